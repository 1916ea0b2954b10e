using System.CommandLine;
using ClusterBackup.Configuration;
using ClusterBackup.Encryption;

namespace ClusterBackup.Cli;

/// <summary><c>--identity FILE</c>, falling back to <c>Encryption:IdentityFile</c>: the age secret keys that decrypt.</summary>
internal static class IdentityOption
{
    public static Option<string?> Create() => new("--identity")
    {
        Description = "age identity file (AGE-SECRET-KEY-1…, as age-keygen writes it); default: Encryption:IdentityFile",
        HelpName = "FILE",
    };

    /// <summary>The identities, or null when neither the flag nor the config names a file.</summary>
    public static IReadOnlyList<AgeIdentity>? Load(string? flag, AgentSettings settings)
    {
        var path = flag ?? settings.Encryption.IdentityFile;
        if (path is null)
        {
            return null;
        }

        try
        {
            return AgeIdentity.LoadFile(path);
        }
        catch (FormatException ex) when (flag is not null)
        {
            throw new UsageException($"--identity: {Redaction.Scrub(ex.Message, path)}");
        }
        catch (FormatException ex)
        {
            throw new ConfigurationException(settings.ConfigPath, [$"{ClusterBackupOptions.SectionName}:Encryption:IdentityFile: {Redaction.Scrub(ex.Message, path)}"]);
        }
    }
}
