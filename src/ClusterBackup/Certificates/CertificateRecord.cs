namespace ClusterBackup.Certificates;

/// <summary>
/// One X.509 certificate found in a set's PKI or kubeconfig archive, as the manifest records it.
/// Only certificates: private keys are never recorded.
/// </summary>
internal sealed record CertificateRecord
{
    public const string ClientCertificateData = "client-certificate-data";
    public const string CertificateAuthorityData = "certificate-authority-data";

    public required string Node { get; init; }

    /// <summary>The file within its archive: <c>apiserver.crt</c>, <c>etcd/ca.crt</c>, <c>admin.conf</c>.</summary>
    public required string File { get; init; }

    /// <summary>For a kubeconfig, the field the certificate came from; null for a <c>.crt</c> file.</summary>
    public string? Field { get; init; }

    public required string Subject { get; init; }

    public required string Issuer { get; init; }

    /// <summary>Hex, as <c>openssl x509 -serial</c> prints it.</summary>
    public required string Serial { get; init; }

    public required DateTimeOffset NotAfter { get; init; }

    public required bool IsCa { get; init; }

    /// <summary>
    /// The certificate's name in tables and metric labels: the file, and for a kubeconfig's CA data
    /// <c>admin.conf/certificate-authority</c>, so that each name is one certificate of a node.
    /// </summary>
    public string Name => Field == CertificateAuthorityData ? $"{File}/certificate-authority" : File;
}
