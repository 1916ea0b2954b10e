using System.Security.Cryptography;
using System.Text;

namespace ClusterBackup.Sources.Ssh;

/// <summary>
/// An OpenSSH known_hosts file: plain and hashed (<c>|1|salt|hash</c>) host patterns, comma
/// lists, <c>[host]:port</c> for non-default ports, <c>*</c>/<c>?</c> wildcards, <c>!</c> negation
/// and <c>@revoked</c> markers. <c>@cert-authority</c> lines are not supported and are skipped.
/// </summary>
internal sealed class KnownHosts
{
    private readonly List<Entry> _entries;

    private KnownHosts(List<Entry> entries) => _entries = entries;

    public static KnownHosts Parse(string text)
    {
        var entries = new List<Entry>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var revoked = false;
            if (fields[0].StartsWith('@'))
            {
                if (fields[0] != "@revoked")
                {
                    continue;
                }

                revoked = true;
                fields = fields[1..];
            }

            if (fields.Length < 3)
            {
                continue;
            }

            byte[] key;
            try
            {
                key = Convert.FromBase64String(fields[2]);
            }
            catch (FormatException)
            {
                continue;
            }

            entries.Add(new Entry(fields[0], fields[1], key, revoked));
        }

        return new KnownHosts(entries);
    }

    public static KnownHosts Load(string path) => Parse(File.ReadAllText(path));

    /// <summary>The host string OpenSSH writes: <c>host</c> on port 22, <c>[host]:port</c> otherwise.</summary>
    public static string HostString(string host, int port) => port == 22 ? host : $"[{host}]:{port}";

    /// <summary>Key types known for this host, so the client negotiates one it can check.</summary>
    public IReadOnlySet<string> KeyTypesFor(string host, int port)
    {
        var hostString = HostString(host, port);
        return _entries.Where(e => !e.Revoked && Matches(e.Hosts, hostString))
            .Select(e => e.KeyType)
            .ToHashSet(StringComparer.Ordinal);
    }

    public HostKeyVerdict Check(string host, int port, string keyType, byte[] key)
    {
        var hostString = HostString(host, port);
        var matching = _entries.Where(e => Matches(e.Hosts, hostString)).ToList();
        if (matching.Any(e => e.Revoked && e.Key.AsSpan().SequenceEqual(key)))
        {
            return HostKeyVerdict.Revoked;
        }

        var current = matching.Where(e => !e.Revoked).ToList();
        if (current.Any(e => e.KeyType == keyType && e.Key.AsSpan().SequenceEqual(key)))
        {
            return HostKeyVerdict.Trusted;
        }

        return current.Any(e => e.KeyType == keyType) ? HostKeyVerdict.Changed : HostKeyVerdict.Unknown;
    }

    private static bool Matches(string patterns, string hostString)
    {
        if (patterns.StartsWith("|1|", StringComparison.Ordinal))
        {
            return MatchesHashed(patterns, hostString);
        }

        var matched = false;
        foreach (var pattern in patterns.Split(','))
        {
            var negated = pattern.StartsWith('!');
            var body = negated ? pattern[1..] : pattern;
            if (Wildcard(body, hostString))
            {
                if (negated)
                {
                    return false;
                }

                matched = true;
            }
        }

        return matched;
    }

    private static bool MatchesHashed(string entry, string hostString)
    {
        var parts = entry.Split('|');
        if (parts.Length != 4)
        {
            return false;
        }

        try
        {
            var salt = Convert.FromBase64String(parts[2]);
            var expected = Convert.FromBase64String(parts[3]);
            var actual = HMACSHA1.HashData(salt, Encoding.UTF8.GetBytes(hostString));
            return CryptographicOperations.FixedTimeEquals(actual, expected);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static bool Wildcard(string pattern, string text)
    {
        // Iterative glob match of '*' and '?', case-insensitive as OpenSSH does for host names.
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || char.ToLowerInvariant(pattern[p]) == char.ToLowerInvariant(text[t])))
            {
                p++;
                t++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = t;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++mark;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }

        return p == pattern.Length;
    }

    private sealed record Entry(string Hosts, string KeyType, byte[] Key, bool Revoked);
}

internal enum HostKeyVerdict
{
    Trusted,
    Unknown,
    Changed,
    Revoked,
}
