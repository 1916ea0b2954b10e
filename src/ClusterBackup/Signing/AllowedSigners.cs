using System.Text.RegularExpressions;

namespace ClusterBackup.Signing;

/// <summary>
/// The keys trusted to have signed sets, in OpenSSH's allowed-signers format (ssh-keygen(1),
/// "ALLOWED SIGNERS"): <c>principals [options] keytype base64-key [comment]</c>, one a line. Only
/// <c>ssh-ed25519</c> keys for the principal <c>cluster-backup</c> (or <c>*</c>) count; a
/// <c>namespaces=</c> option must include <c>cluster-backup</c>; certificate authorities are not used.
/// </summary>
internal sealed class AllowedSigners
{
    private readonly IReadOnlyList<SignerKey> _keys;

    private AllowedSigners(IReadOnlyList<SignerKey> keys) => _keys = keys;

    public IReadOnlyList<SignerKey> Keys => _keys;

    public static AllowedSigners Of(params SignerKey[] keys) => new(keys);

    public bool Trusts(SignerKey key) => _keys.Contains(key);

    /// <summary>Reads the file; a malformed line is a <see cref="FormatException"/> naming it.</summary>
    public static AllowedSigners Load(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"cannot be read: {ex.Message}", ex);
        }

        var keys = new List<SignerKey>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            if (Parse(line, i + 1) is { } key)
            {
                keys.Add(key);
            }
        }

        return keys.Count == 0
            ? throw new FormatException($"holds no {SignerKey.KeyType} key for the principal {SshSignature.Namespace}")
            : new AllowedSigners(keys);
    }

    private static SignerKey? Parse(string line, int number)
    {
        var fields = Fields(line);
        var principals = fields[0].Split(',');
        var keyAt = fields.FindIndex(1, f => f == SignerKey.KeyType || f.StartsWith("ssh-", StringComparison.Ordinal)
                                             || f.StartsWith("ecdsa-", StringComparison.Ordinal) || f.StartsWith("sk-", StringComparison.Ordinal));
        if (keyAt < 0 || keyAt + 1 >= fields.Count)
        {
            throw new FormatException($"line {number}: expected 'principals [options] keytype base64-key'");
        }

        var options = string.Join(' ', fields.Skip(1).Take(keyAt - 1));
        if (fields[keyAt] != SignerKey.KeyType || Regex.IsMatch(options, @"(^|,)cert-authority(,|$)", RegexOptions.IgnoreCase)
            || !principals.Any(p => p is SshSignature.Namespace or "*"))
        {
            return null;
        }

        var namespaces = Regex.Match(options, "(?:^|,)namespaces=\"([^\"]*)\"", RegexOptions.IgnoreCase);
        if (namespaces.Success && !namespaces.Groups[1].Value.Split(',').Contains(SshSignature.Namespace))
        {
            return null;
        }

        try
        {
            return SignerKey.FromBlob(Convert.FromBase64String(fields[keyAt + 1]));
        }
        catch (FormatException ex)
        {
            throw new FormatException($"line {number}: the key is not valid: {ex.Message}", ex);
        }
    }

    /// <summary>Whitespace-separated fields; double quotes (in options) keep spaces.</summary>
    private static List<string> Fields(string line)
    {
        var fields = new List<string>();
        var current = new System.Text.StringBuilder();
        var quoted = false;
        foreach (var c in line)
        {
            if (c == '"')
            {
                quoted = !quoted;
                current.Append(c);
            }
            else if (char.IsWhiteSpace(c) && !quoted)
            {
                if (current.Length > 0)
                {
                    fields.Add(current.ToString());
                    current.Clear();
                }
            }
            else
            {
                current.Append(c);
            }
        }

        if (current.Length > 0)
        {
            fields.Add(current.ToString());
        }

        return fields;
    }
}

/// <summary>Which sets are read: those signed by a trusted key, and unsigned ones only when allowed.</summary>
internal sealed record SignaturePolicy(AllowedSigners? Trusted, bool AllowUnsigned);
