using System.Text;
using System.Text.RegularExpressions;

namespace ClusterBackup.Verify;

/// <summary>A key that Secrets in etcd are encrypted with: kube-apiserver's provider and the key's name.</summary>
internal sealed record AtRestKey(string Provider, string Name)
{
    public override string ToString() => $"{Provider} key {Name}";
}

/// <summary>
/// Whether a set can give back the Secrets its snapshot holds: kube-apiserver encrypts them at rest
/// with keys of its EncryptionConfiguration, and prefixes each stored value with the provider and
/// the key's name (<c>k8s:enc:aescbc:v1:key1:</c>). Restored without that file, such Secrets cannot
/// be read. Pure: from the values' prefixes and the text of the encryption configs the set holds.
/// Key names are compared, not the keys themselves: a key replaced under the same name passes.
/// </summary>
internal static partial class SecretsAtRest
{
    /// <summary>The etcd prefix of Secrets, and the end of its range.</summary>
    public const string Prefix = "/registry/secrets/";

    public const string RangeEnd = "/registry/secrets0";

    private static readonly byte[] Encrypted = "k8s:enc:"u8.ToArray();

    /// <summary>The key a stored value was encrypted with; null when it is stored as it is (the identity provider).</summary>
    public static AtRestKey? KeyOf(ReadOnlySpan<byte> value)
    {
        if (!value.StartsWith(Encrypted))
        {
            return null;
        }

        // k8s:enc:{provider}:{version}:{name}:{ciphertext}
        var fields = new List<string>(3);
        var rest = value[Encrypted.Length..];
        while (fields.Count < 3)
        {
            var colon = rest.IndexOf((byte)':');
            if (colon < 0)
            {
                return new AtRestKey(fields.Count > 0 ? fields[0] : "unknown", "?");
            }

            fields.Add(Encoding.ASCII.GetString(rest[..colon]));
            rest = rest[(colon + 1)..];
        }

        return new AtRestKey(fields[0], fields[2]);
    }

    /// <summary>Whether a file is an EncryptionConfiguration (kube-apiserver reads YAML or JSON).</summary>
    public static bool IsEncryptionConfiguration(string text) => ConfigurationKind().IsMatch(text);

    /// <summary>The names an EncryptionConfiguration gives its keys and KMS plugins.</summary>
    public static IReadOnlySet<string> KeyNames(string configuration) =>
        NameField().Matches(configuration).Select(m => m.Groups["name"].Value.Trim('"', '\'')).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// What the drill says about the Secrets, and whether the set can give them back.
    /// </summary>
    /// <param name="encrypted">How many Secrets each key encrypted.</param>
    /// <param name="plain">Secrets stored as they are.</param>
    /// <param name="configurations">The set's encryption configs: where each came from, and its text.</param>
    public static (bool Ok, string Detail) Judge(IReadOnlyDictionary<AtRestKey, int> encrypted, int plain, IReadOnlyList<(string Source, string Text)> configurations)
    {
        if (encrypted.Count == 0)
        {
            return (true, $"{plain} Secrets, none encrypted at rest");
        }

        var keys = string.Join(", ", encrypted.OrderBy(k => k.Key.Provider, StringComparer.Ordinal).ThenBy(k => k.Key.Name, StringComparer.Ordinal).Select(k => $"{k.Value} with {k.Key}"));
        var missing = encrypted.Keys
            .Where(k => !configurations.Any(c => KeyNames(c.Text).Contains(k.Name)))
            .OrderBy(k => k.Provider, StringComparer.Ordinal).ThenBy(k => k.Name, StringComparer.Ordinal)
            .ToList();
        if (missing.Count == 0)
        {
            var kms = encrypted.Keys.Any(k => k.Provider == "kms") ? "; a KMS plugin's keys are in the KMS, not in the set" : string.Empty;
            return (true, $"Secrets encrypted at rest ({keys}): the set's encryption config ({string.Join(", ", configurations.Select(c => c.Source).Distinct(StringComparer.Ordinal))}) names every key{kms}");
        }

        var holds = configurations.Count == 0
            ? "the set holds no encryption config (kube-apiserver's --encryption-provider-config)"
            : $"no encryption config in the set ({string.Join(", ", configurations.Select(c => c.Source).Distinct(StringComparer.Ordinal))}) names {(missing.Count == 1 ? "it" : "them")}";
        return (false, $"Secrets encrypted at rest ({keys}) with {string.Join(", ", missing)}, but {holds}: restored, they cannot be read");
    }

    [GeneratedRegex(@"(^|[{,])\s*""?kind""?\s*:\s*""?EncryptionConfiguration\b", RegexOptions.Multiline)]
    private static partial Regex ConfigurationKind();

    [GeneratedRegex(@"""?\bname""?\s*:\s*(?<name>""[^""]+""|'[^']+'|[^\s,}]+)")]
    private static partial Regex NameField();
}
