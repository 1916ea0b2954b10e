namespace ClusterBackup.Rig;

/// <summary>
/// A kubeadm-shaped PKI tree made with openssl: the cluster CA, the etcd CA, etcd server, peer and
/// healthcheck-client certificates (SANs 127.0.0.1 and localhost), a service-account key pair.
/// Private keys are 0600, as kubeadm writes them.
/// </summary>
public sealed class KubeadmPki
{
    private KubeadmPki(string directory) => Root = directory;

    public string Root { get; }

    public string EtcdCa => Path.Combine(Root, "etcd", "ca.crt");

    public string EtcdServerCert => Path.Combine(Root, "etcd", "server.crt");

    public string EtcdServerKey => Path.Combine(Root, "etcd", "server.key");

    public string EtcdPeerCert => Path.Combine(Root, "etcd", "peer.crt");

    public string EtcdPeerKey => Path.Combine(Root, "etcd", "peer.key");

    public string HealthcheckCert => Path.Combine(Root, "etcd", "healthcheck-client.crt");

    public string HealthcheckKey => Path.Combine(Root, "etcd", "healthcheck-client.key");

    public static async Task<KubeadmPki> CreateAsync(string directory)
    {
        var etcd = Path.Combine(directory, "etcd");
        Directory.CreateDirectory(etcd);
        await CaAsync(directory, "ca", "kubernetes");
        await CaAsync(directory, "front-proxy-ca", "front-proxy-ca");
        await CaAsync(etcd, "ca", "etcd-ca");
        const string san = "subjectAltName=DNS:localhost,IP:127.0.0.1";
        await LeafAsync(etcd, "server", "etcd-server", "serverAuth,clientAuth", san);
        await LeafAsync(etcd, "peer", "etcd-peer", "serverAuth,clientAuth", san);
        await LeafAsync(etcd, "healthcheck-client", "kube-etcd-healthcheck-client", "clientAuth", null);
        await LeafAsync(directory, "apiserver-etcd-client", "kube-apiserver-etcd-client", "clientAuth", null, caDirectory: etcd);
        await Tools.CheckAsync("openssl", "genrsa", "-out", Path.Combine(directory, "sa.key"), "2048");
        await Tools.CheckAsync("openssl", "rsa", "-in", Path.Combine(directory, "sa.key"), "-pubout", "-out", Path.Combine(directory, "sa.pub"));
        foreach (var key in Directory.EnumerateFiles(directory, "*.key", SearchOption.AllDirectories))
        {
            File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        foreach (var scratch in Directory.EnumerateFiles(directory, "*.*", SearchOption.AllDirectories)
                     .Where(f => f.EndsWith(".csr", StringComparison.Ordinal) || f.EndsWith(".ext", StringComparison.Ordinal) || f.EndsWith(".srl", StringComparison.Ordinal)))
        {
            File.Delete(scratch);
        }

        return new KubeadmPki(directory);
    }

    /// <summary>Copies the tree to another node's PKI dir, keeping modes.</summary>
    public async Task CopyToAsync(string target)
    {
        Directory.CreateDirectory(target);
        await Tools.CheckAsync("cp", "-a", Root + "/.", target);
    }

    private static Task CaAsync(string directory, string name, string commonName) =>
        Tools.CheckAsync("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", Path.Combine(directory, $"{name}.key"), "-out", Path.Combine(directory, $"{name}.crt"),
            "-subj", $"/CN={commonName}");

    private static async Task LeafAsync(string directory, string name, string commonName, string usage, string? san, string? caDirectory = null)
    {
        caDirectory ??= directory;
        var key = Path.Combine(directory, $"{name}.key");
        var csr = Path.Combine(directory, $"{name}.csr");
        var ext = Path.Combine(directory, $"{name}.ext");
        await File.WriteAllTextAsync(ext, $"extendedKeyUsage={usage}\n" + (san is null ? string.Empty : san + "\n"));
        await Tools.CheckAsync("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", $"/CN={commonName}");
        await Tools.CheckAsync("openssl", "x509", "-req", "-in", csr, "-CA", Path.Combine(caDirectory, "ca.crt"), "-CAkey", Path.Combine(caDirectory, "ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", Path.Combine(directory, $"{name}.crt"));
    }
}
