using ClusterBackup.Encryption;

namespace ClusterBackup.Configuration;

/// <summary>Turns the <c>Encryption</c> section into recipients, reporting every problem by key.</summary>
internal static class EncryptionSettingsReader
{
    private const string Where = $"{ClusterBackupOptions.SectionName}:Encryption";

    public static EncryptionSettings Read(EncryptionOptions options, List<string> problems)
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
                problems.Add($"{Where}:Recipients:{i}: {Redaction.Quote(options.Recipients[i])} is not an age X25519 recipient (age1…; age-keygen -y KEYFILE prints it)");
            }
        }

        if (options.RecipientsFile is { } file)
        {
            ReadRecipientsFile(file, recipients, problems);
        }

        var configured = options.Recipients.Count > 0 || options.RecipientsFile is not null;
        if (options.Disabled && configured)
        {
            problems.Add($"{Where}:Disabled: is true while recipients are configured; remove one or the other");
        }
        else if (!options.Disabled && !configured)
        {
            problems.Add($"{Where}:Recipients: no age recipient is configured. Backups hold the cluster's CA keys and every Secret: " +
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
            problems.Add($"{Where}:RecipientsFile: cannot read {Redaction.Quote(file)}: {Redaction.Scrub(ex.Message, file)}");
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
                problems.Add($"{Where}:RecipientsFile: {file}:{i + 1}: not an age X25519 recipient (age1…)");
            }
        }

        if (found == 0)
        {
            problems.Add($"{Where}:RecipientsFile: {Redaction.Quote(file)} holds no recipient");
        }
    }
}
