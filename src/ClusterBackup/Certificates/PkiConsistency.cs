using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;

namespace ClusterBackup.Certificates;

/// <summary>
/// Whether a node's PKI holds together, as a rebuild from it needs: each private key matches its
/// certificate, each certificate was signed by the CA of the same PKI that its issuer names, the
/// service-account key pair is one pair, and each kubeconfig trusts the PKI's <c>ca.crt</c> and holds
/// the key of its client certificate. A set of a PKI that fails these restores a control plane that
/// cannot start, or cannot be reached. Pure: from the files' content as the archives streamed by.
/// A problem names files only, never key material. What cannot be judged (an encrypted key, a key
/// type other than RSA or ECDSA, a CA the PKI does not hold) is left alone.
/// </summary>
internal static class PkiConsistency
{
    /// <summary>The PKI files the check reads: certificates, private keys, sa.pub.</summary>
    public static bool IsRead(string entry) =>
        entry.EndsWith(".crt", StringComparison.Ordinal) || entry.EndsWith(".key", StringComparison.Ordinal) || entry.EndsWith(".pub", StringComparison.Ordinal);

    /// <param name="pki">The PKI's <c>*.crt</c>, <c>*.key</c> and <c>*.pub</c> files by path within the dir.</param>
    /// <param name="kubeconfigs">The kubeconfigs by file name.</param>
    public static IReadOnlyList<PkiMismatch> Check(string node, IReadOnlyDictionary<string, byte[]> pki, IReadOnlyDictionary<string, byte[]> kubeconfigs)
    {
        var mismatches = new List<PkiMismatch>();
        var certificates = pki.Where(f => f.Key.EndsWith(".crt", StringComparison.Ordinal))
            .OrderBy(f => f.Key, StringComparer.Ordinal)
            .SelectMany(f => Parse(CertificateReader.PemCertificates(Encoding.ASCII.GetString(f.Value))).Select(c => (File: f.Key, Certificate: c)))
            .ToList();

        foreach (var (file, content) in pki.Where(f => f.Key.EndsWith(".key", StringComparison.Ordinal)).OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            var pair = file == "sa.key" ? "sa.pub" : file[..^".key".Length] + ".crt";
            var key = PublicKeyOf(content);
            if (key is PublicKey.Unreadable && (pki.ContainsKey(pair) || content.AsSpan().IndexOf("-----BEGIN"u8) >= 0))
            {
                // A key beside its certificate, or a PEM: meant as a key. Other *.key files (raw bytes) are not judged.
                mismatches.Add(new PkiMismatch(node, file, "is not a readable private key"));
            }
            else if (key is PublicKey.Known known && pki.TryGetValue(pair, out var other))
            {
                var expected = pair.EndsWith(".pub", StringComparison.Ordinal)
                    ? [PublicKeyOf(other)]
                    : certificates.Where(c => c.File == pair).Select(c => PublicKeyOf(c.Certificate)).ToList();
                if (expected.Count > 0 && !expected.Any(e => e is PublicKey.Known k && k.Info.AsSpan().SequenceEqual(known.Info)))
                {
                    mismatches.Add(new PkiMismatch(node, file, $"does not match {pair}"));
                }
            }
        }

        foreach (var (file, certificate) in certificates)
        {
            if (NotSignedBy(certificate, certificates) is { } ca)
            {
                mismatches.Add(new PkiMismatch(node, file, $"is not signed by {ca}, the CA its issuer names ({certificate.IssuerDN})"));
            }
        }

        var clusterCa = certificates.Where(c => c.File == PkiInventory.ClusterCa).Select(c => c.Certificate).ToList();
        foreach (var (file, content) in kubeconfigs.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            CheckKubeconfig(node, file, Encoding.UTF8.GetString(content), certificates, clusterCa, mismatches);
        }

        return mismatches;
    }

    private static void CheckKubeconfig(
        string node, string file, string text, List<(string File, BcCertificate Certificate)> pki, List<BcCertificate> clusterCa, List<PkiMismatch> mismatches)
    {
        var fields = CertificateReader.KubeconfigFields(text)
            .Select(f => (f.Field, Pem: CertificateReader.Decoded(f.Value) is { } bytes ? Encoding.ASCII.GetString(bytes) : null))
            .Where(f => f.Pem is not null)
            .ToList();
        var authorities = Parse(fields.Where(f => f.Field == CertificateRecord.CertificateAuthorityData).SelectMany(f => CertificateReader.PemCertificates(f.Pem!))).ToList();
        // Only a kubeconfig that names the cluster CA (its subject) is judged: one of a webhook or
        // another cluster trusts a CA of its own.
        if (authorities.Any(a => clusterCa.Any(c => c.SubjectDN.Equivalent(a.SubjectDN))) && !authorities.Any(a => clusterCa.Any(c => c.Equals(a))))
        {
            mismatches.Add(new PkiMismatch(node, file, $"holds {CertificateRecord.CertificateAuthorityData} other than {PkiInventory.ClusterCa}"));
        }

        var clients = Parse(fields.Where(f => f.Field == CertificateRecord.ClientCertificateData).SelectMany(f => CertificateReader.PemCertificates(f.Pem!))).ToList();
        foreach (var client in clients)
        {
            if (NotSignedBy(client, pki) is { } ca)
            {
                mismatches.Add(new PkiMismatch(node, file, $"holds a client certificate not signed by {ca}, the CA its issuer names ({client.IssuerDN})"));
            }
        }

        foreach (var key in fields.Where(f => f.Field == CertificateReader.ClientKeyData))
        {
            var known = PublicKeyOf(Encoding.ASCII.GetBytes(key.Pem!));
            if (known is PublicKey.Unreadable)
            {
                mismatches.Add(new PkiMismatch(node, file, $"holds a {CertificateReader.ClientKeyData} that is not a readable private key"));
            }
            else if (known is PublicKey.Known k && clients.Count > 0 && !clients.Any(c => PublicKeyOf(c) is PublicKey.Known ck && ck.Info.AsSpan().SequenceEqual(k.Info)))
            {
                mismatches.Add(new PkiMismatch(node, file, $"holds a {CertificateReader.ClientKeyData} that does not match its client certificate"));
            }
        }
    }

    /// <summary>
    /// The file of the PKI's CA whose name the certificate's issuer gives, when none of the
    /// certificates of that name verifies its signature; null when one does, when it names itself,
    /// or when the PKI holds no CA of that name (an external or intermediate CA: nothing to judge).
    /// </summary>
    private static string? NotSignedBy(BcCertificate certificate, List<(string File, BcCertificate Certificate)> pki)
    {
        if (certificate.IssuerDN.Equivalent(certificate.SubjectDN))
        {
            return null;
        }

        var candidates = pki.Where(c => c.Certificate.SubjectDN.Equivalent(certificate.IssuerDN)).ToList();
        if (candidates.Count == 0 || candidates.Any(c => SignedBy(certificate, c.Certificate)))
        {
            return null;
        }

        return string.Join(" or ", candidates.Select(c => c.File).Distinct(StringComparer.Ordinal));
    }

    private static bool SignedBy(BcCertificate certificate, BcCertificate ca)
    {
        try
        {
            certificate.Verify(ca.GetPublicKey());
            return true;
        }
        catch (Exception ex) when (ex is GeneralSecurityException or Org.BouncyCastle.Crypto.CryptoException or ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    private static IEnumerable<BcCertificate> Parse(IEnumerable<byte[]> ders)
    {
        var parser = new X509CertificateParser();
        foreach (var der in ders)
        {
            BcCertificate? certificate;
            try
            {
                certificate = parser.ReadCertificate(der);
            }
            catch (Exception ex) when (ex is GeneralSecurityException or IOException or ArgumentException or InvalidCastException)
            {
                continue; // CertificateReader reports what cannot be read
            }

            if (certificate is not null)
            {
                yield return certificate;
            }
        }
    }

    /// <summary>The public key of a certificate, as .NET encodes it (so that both sides of a comparison are encoded alike).</summary>
    private static PublicKey PublicKeyOf(BcCertificate certificate)
    {
        try
        {
            using var loaded = X509CertificateLoader.LoadCertificate(certificate.GetEncoded());
            using AsymmetricAlgorithm? key = (AsymmetricAlgorithm?)loaded.GetRSAPublicKey() ?? loaded.GetECDsaPublicKey();
            return key is null ? PublicKey.NotJudged : new PublicKey.Known(key.ExportSubjectPublicKeyInfo());
        }
        catch (CryptographicException)
        {
            return PublicKey.NotJudged;
        }
    }

    /// <summary>
    /// The public key of a PEM private key (PKCS#1 RSA, SEC 1 EC, or PKCS#8 of either) or public key.
    /// Unreadable: a PEM whose label promises an RSA or EC key that does not load, or no PEM at all
    /// (a truncated file). Unknown: an encrypted key, or PKCS#8 of another algorithm.
    /// </summary>
    private static PublicKey PublicKeyOf(byte[] content)
    {
        // A private key's text is held in an array that is cleared after, not in a string.
        var text = new char[content.Length];
        try
        {
            Encoding.ASCII.GetChars(content, text);
            if (!PemEncoding.TryFind(text, out var fields))
            {
                return PublicKey.Damaged;
            }

            Func<AsymmetricAlgorithm>[] algorithms = new string(text.AsSpan()[fields.Label]) switch
            {
                "RSA PRIVATE KEY" or "RSA PUBLIC KEY" => [RSA.Create],
                "EC PRIVATE KEY" => [ECDsa.Create],
                "PRIVATE KEY" or "PUBLIC KEY" => [RSA.Create, ECDsa.Create],
                _ => [],
            };
            foreach (var create in algorithms)
            {
                using var key = create();
                try
                {
                    key.ImportFromPem(text);
                    return new PublicKey.Known(key.ExportSubjectPublicKeyInfo());
                }
                catch (Exception ex) when (ex is CryptographicException or ArgumentException)
                {
                    // another algorithm, or damaged
                }
            }

            return algorithms.Length == 1 ? PublicKey.Damaged : PublicKey.NotJudged;
        }
        finally
        {
            Array.Clear(text);
        }
    }

    /// <summary>A key as read: known (its SubjectPublicKeyInfo), of a kind not judged, or damaged.</summary>
    private abstract record PublicKey
    {
        public static readonly PublicKey NotJudged = new Other();
        public static readonly PublicKey Damaged = new Unreadable();

        public sealed record Known(byte[] Info) : PublicKey;

        public sealed record Other : PublicKey;

        public sealed record Unreadable : PublicKey;
    }
}

/// <summary>A file of a node's PKI or kubeconfigs that does not fit the rest, as the manifest records it.</summary>
/// <param name="Problem">What is wrong, following the file's name: <c>does not match apiserver.crt</c>.</param>
internal sealed record PkiMismatch(string Node, string File, string Problem)
{
    public override string ToString() => $"{File} {Problem}";
}
