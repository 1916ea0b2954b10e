using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;

namespace ClusterBackup.Certificates;

/// <summary>
/// Reads the certificates out of what a backup streams: PEM <c>*.crt</c> files of the PKI (every
/// certificate of a chain) and the <c>client-certificate-data</c> / <c>certificate-authority-data</c>
/// fields of kubeconfigs. A field naming a file (<c>client-certificate:</c>) has nothing to read.
/// What cannot be parsed is reported, not thrown. Keys are left to <see cref="PkiConsistency"/>.
/// </summary>
internal static partial class CertificateReader
{
    /// <summary>A kubeconfig's embedded client key: read by the consistency check only, never recorded.</summary>
    public const string ClientKeyData = "client-key-data";

    /// <summary>Whether a PKI archive entry is read for certificates.</summary>
    public static bool IsPkiCertificate(string entry) => entry.EndsWith(".crt", StringComparison.Ordinal);

    /// <summary>Whether a kubeconfig archive entry is read: the top-level <c>*.conf</c> files.</summary>
    public static bool IsKubeconfig(string entry) => entry.EndsWith(".conf", StringComparison.Ordinal) && !entry.Contains('/', StringComparison.Ordinal);

    public static IReadOnlyList<CertificateRecord> FromPem(string node, string file, byte[] content, ICollection<string> problems)
    {
        var records = new List<CertificateRecord>();
        foreach (Match block in PemCertificate().Matches(Encoding.ASCII.GetString(content)))
        {
            Add(records, node, file, null, block.Groups["body"].Value, problems);
        }

        return records;
    }

    public static IReadOnlyList<CertificateRecord> FromKubeconfig(string node, string file, byte[] content, ICollection<string> problems)
    {
        var records = new List<CertificateRecord>();
        foreach (var (name, data) in KubeconfigFields(Encoding.UTF8.GetString(content)).Where(f => f.Field != ClientKeyData))
        {
            // The field holds a base64 PEM (kubeadm writes it so); a base64 DER is read too.
            if (Decoded(data) is not { } decoded)
            {
                problems.Add($"{node}: {file}: {name} is not base64");
                continue;
            }

            var text = Encoding.ASCII.GetString(decoded);
            var blocks = PemCertificate().Matches(text);
            if (blocks.Count == 0)
            {
                Add(records, node, file, name, Convert.ToBase64String(decoded), problems);
            }

            foreach (Match block in blocks)
            {
                Add(records, node, file, name, block.Groups["body"].Value, problems);
            }
        }

        return records;
    }

    /// <summary>The DER of each PEM certificate in the text; a block that is not base64 is skipped.</summary>
    public static IEnumerable<byte[]> PemCertificates(string text)
    {
        foreach (Match block in PemCertificate().Matches(text))
        {
            byte[] der;
            try
            {
                der = Convert.FromBase64String(block.Groups["body"].Value);
            }
            catch (FormatException)
            {
                continue;
            }

            yield return der;
        }
    }

    /// <summary>A kubeconfig field's base64 value (quoted or not), decoded; null when it is not base64.</summary>
    public static byte[]? Decoded(string value)
    {
        try
        {
            return Convert.FromBase64String(value.Trim('"', '\''));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>The <c>*-data</c> fields of a kubeconfig with certificates or a key, and their base64 values.</summary>
    public static IEnumerable<(string Field, string Value)> KubeconfigFields(string text) =>
        KubeconfigField().Matches(text).Select(m => (m.Groups["field"].Value, m.Groups["data"].Value));

    private static void Add(List<CertificateRecord> records, string node, string file, string? field, string base64, ICollection<string> problems)
    {
        try
        {
            using var certificate = X509CertificateLoader.LoadCertificate(Convert.FromBase64String(base64));
            records.Add(new CertificateRecord
            {
                Node = node,
                File = file,
                Field = field,
                Subject = certificate.Subject,
                Issuer = certificate.Issuer,
                Serial = SerialText(certificate.SerialNumberBytes.Span),
                NotAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero),
                IsCa = certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority),
            });
        }
        catch (Exception ex) when (ex is CryptographicException or FormatException)
        {
            problems.Add($"{node}: {file}{(field is null ? string.Empty : $" ({field})")}: not a readable certificate ({ex.Message.TrimEnd('.')})");
        }
    }

    /// <summary>
    /// A serial as <c>openssl x509 -serial</c> prints it: upper-case hex of the number, without the
    /// zero byte DER puts before a number whose first byte has its high bit set.
    /// </summary>
    internal static string SerialText(ReadOnlySpan<byte> bigEndian)
    {
        while (bigEndian.Length > 1 && bigEndian[0] == 0)
        {
            bigEndian = bigEndian[1..];
        }

        return Convert.ToHexString(bigEndian);
    }

    [GeneratedRegex(@"-----BEGIN CERTIFICATE-----(?<body>[A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----")]
    private static partial Regex PemCertificate();

    [GeneratedRegex(@"^\s*(?<field>client-certificate-data|certificate-authority-data|client-key-data):\s*(?<data>\S+)\s*$", RegexOptions.Multiline)]
    private static partial Regex KubeconfigField();
}

/// <summary>Which certificates need attention: pure, from the manifest's records and a clock's now.</summary>
internal static class CertificateExpiry
{
    /// <summary>The days a certificate has left (negative once expired), as the table prints them.</summary>
    public static string Residual(DateTimeOffset notAfter, DateTimeOffset now)
    {
        var left = notAfter - now;
        if (left < TimeSpan.Zero)
        {
            return "expired";
        }

        return left.TotalDays >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)left.TotalDays}d") : string.Create(CultureInfo.InvariantCulture, $"{(int)left.TotalHours}h");
    }

    /// <summary>Expired, or expiring within the warning period.</summary>
    public static bool NeedsAttention(CertificateRecord certificate, DateTimeOffset now, int warnDays) =>
        certificate.NotAfter - now < TimeSpan.FromDays(warnDays);

    /// <summary>Soonest first; ties by node and name, so the order is stable.</summary>
    public static IReadOnlyList<CertificateRecord> Sorted(IEnumerable<CertificateRecord> certificates) =>
        certificates.OrderBy(c => c.NotAfter).ThenBy(c => c.Node, StringComparer.Ordinal).ThenBy(c => c.Name, StringComparer.Ordinal).ToList();
}
