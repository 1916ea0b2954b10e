using System.Security.Cryptography.X509Certificates;

namespace ClusterBackup.Tls;

/// <summary>Trusts a server certificate only if it chains to one given CA (etcd's, or a private S3 endpoint's).</summary>
internal static class PrivateCaTrust
{
    public static bool IsIssuedBy(X509Certificate certificate, X509Certificate2 ca, out string reason)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        var trusted = chain.Build(leaf);
        reason = trusted ? string.Empty : string.Join(", ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()));
        return trusted;
    }
}
