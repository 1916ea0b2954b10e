using ClusterBackup.Encryption;

namespace ClusterBackup.Configuration;

/// <summary>The <c>Encryption</c> rules: recipients parsed (inline and from the file), each problem by key.</summary>
internal static partial class SettingsValidator
{
    private const string EncryptionWhere = $"{ClusterBackupOptions.SectionName}:Encryption";

    private static EncryptionSettings ValidateEncryption(EncryptionOptions options, List<string> problems)
    {
        var recipients = new List<AgeRecipient>();
        for (var i = 0; i < options.Recipients.Count; i++)
        {
            if (AgeRecipient.TryParse(options.Recipients[i], out var recipient))
            {
                recipients.Add(recipient);
            }
            else
            {
                problems.Add($"{EncryptionWhere}:Recipients:{i}: {Redaction.Quote(options.Recipients[i])} is not an age X25519 recipient (age1…; age-keygen -y KEYFILE prints it)");
            }
        }

        if (options.RecipientsFile is { } file)
        {
            ReadRecipientsFile(file, recipients, problems);
        }

        var configured = options.Recipients.Count > 0 || options.RecipientsFile is not null;
        if (options.Disabled && configured)
        {
            problems.Add($"{EncryptionWhere}:Disabled: is true while recipients are configured; remove one or the other");
        }
        else if (!options.Disabled && !configured)
        {
            problems.Add($"{EncryptionWhere}:Recipients: no age recipient is configured. Backups hold the cluster's CA keys and every Secret: " +
                         "add the age1… public key of a key kept off this machine (age-keygen -o key.txt; age-keygen -y key.txt), " +
                         "or set Encryption:Disabled to true to store them unencrypted");
        }

        return new EncryptionSettings(options.Disabled ? [] : recipients.Distinct().ToList(), options.IdentityFile);
    }

    private static void ReadRecipientsFile(string file, List<AgeRecipient> recipients, List<string> problems)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problems.Add($"{EncryptionWhere}:RecipientsFile: cannot read {Redaction.Quote(file)}: {Redaction.Scrub(ex.Message, file)}");
            return;
        }

        var found = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            if (AgeRecipient.TryParse(line, out var recipient))
            {
                recipients.Add(recipient);
                found++;
            }
            else
            {
                problems.Add($"{EncryptionWhere}:RecipientsFile: {file}:{i + 1}: not an age X25519 recipient (age1…)");
            }
        }

        if (found == 0)
        {
            problems.Add($"{EncryptionWhere}:RecipientsFile: {Redaction.Quote(file)} holds no recipient");
        }
    }
}
