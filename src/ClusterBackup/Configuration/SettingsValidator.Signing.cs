using ClusterBackup.Signing;

namespace ClusterBackup.Configuration;

/// <summary>The <c>Signing</c> rules: the key loaded when it signs or is the trust, the allowed signers parsed.</summary>
internal static partial class SettingsValidator
{
    private const string SigningWhere = $"{ClusterBackupOptions.SectionName}:Signing";

    private static SigningSettings ValidateSigning(SigningOptions options, ConfigurationUse use, List<string> problems)
    {
        var writes = use is ConfigurationUse.Backup or ConfigurationUse.Daemon;
        if (options.Disabled && options.KeyFile is not null)
        {
            problems.Add($"{SigningWhere}:Disabled: is true while KeyFile is set; remove one or the other");
        }
        else if (writes && !options.Disabled && options.KeyFile is null)
        {
            problems.Add($"{SigningWhere}:KeyFile: no signing key is configured. Every set is signed so that a forged one is refused before it is restored: " +
                         "generate a key kept on this machine (ssh-keygen -t ed25519 -N '' -C cluster-backup -f /etc/cluster-backup/signing_ed25519) " +
                         "and set Signing:KeyFile to it, or set Signing:Disabled to true to write unsigned sets");
        }

        AllowedSigners? trusted = null;
        if (options.AllowedSignersFile is { } file)
        {
            try
            {
                trusted = AllowedSigners.Load(file);
            }
            catch (FormatException ex)
            {
                problems.Add($"{SigningWhere}:AllowedSignersFile: {Redaction.Quote(file)} {Redaction.Scrub(ex.Message, file)}");
            }
        }

        // The key is read where it signs, or where it is the only trust; a reader with an allowed-signers file never needs it.
        SigningKey? key = null;
        if (options.KeyFile is { } keyFile && !options.Disabled && (writes || options.AllowedSignersFile is null))
        {
            try
            {
                key = SigningKey.Load(keyFile);
            }
            catch (FormatException ex)
            {
                problems.Add($"{SigningWhere}:KeyFile: {Redaction.Quote(keyFile)} {Redaction.Scrub(ex.Message, keyFile)}");
            }
        }

        return new SigningSettings(writes ? key : null, trusted ?? (key is null ? null : AllowedSigners.Of(key.Public)), options.Disabled);
    }
}
