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

    /// <summary>The kubeconfigs kubeadm writes, each with client-certificate-data and certificate-authority-data.</summary>
    public static readonly IReadOnlyList<(string File, string CommonName, int Days, UnixFileMode Mode)> Kubeconfigs =
    [
        ("admin.conf", "kubernetes-admin", 365, UnixFileMode.UserRead | UnixFileMode.UserWrite),
        ("super-admin.conf", "kubernetes-super-admin", 365, UnixFileMode.UserRead | UnixFileMode.UserWrite),
        ("controller-manager.conf", "system:kube-controller-manager", 365, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead),
        ("scheduler.conf", "system:kube-scheduler", ExpiringKubeconfigDays, UnixFileMode.UserRead | UnixFileMode.UserWrite),
    ];

    /// <summary>scheduler.conf's client certificate expires this soon: inside the 30 days certs warns about.</summary>
    public const int ExpiringKubeconfigDays = 10;

    /// <summary>
    /// Writes the kubeconfigs into a node's kubeconfig directory (its /etc/kubernetes), client
    /// certificates signed by the cluster CA; and kubelet.conf as kubeadm writes it, pointing at a
    /// certificate file instead of embedding one.
    /// </summary>
    public async Task WriteKubeconfigsAsync(string directory, string node)
    {
        var scratch = Directory.CreateTempSubdirectory("cluster-backup-kubeconfig-").FullName;
        try
        {
            var ca = Convert.ToBase64String(await File.ReadAllBytesAsync(Path.Combine(Root, "ca.crt")));
            foreach (var (file, commonName, days, mode) in Kubeconfigs)
            {
                var key = Path.Combine(scratch, "client.key");
                var csr = Path.Combine(scratch, "client.csr");
                var cert = Path.Combine(scratch, "client.crt");
                await Tools.CheckAsync("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", $"/O=system:masters/CN={commonName}");
                await Tools.CheckAsync("openssl", "x509", "-req", "-in", csr, "-CA", Path.Combine(Root, "ca.crt"), "-CAkey", Path.Combine(Root, "ca.key"),
                    "-CAcreateserial", "-CAserial", Path.Combine(scratch, "ca.srl"), "-days", days.ToString(System.Globalization.CultureInfo.InvariantCulture), "-out", cert);
                var clientCert = Convert.ToBase64String(await File.ReadAllBytesAsync(cert));
                var clientKey = Convert.ToBase64String(await File.ReadAllBytesAsync(key));
                var path = Path.Combine(directory, file);
                await File.WriteAllTextAsync(path, string.Join('\n',
                    "apiVersion: v1",
                    "clusters:",
                    "- cluster:",
                    $"    certificate-authority-data: {ca}",
                    "    server: https://127.0.0.1:6443",
                    "  name: kubernetes",
                    "contexts:",
                    "- context:",
                    "    cluster: kubernetes",
                    $"    user: {commonName}",
                    $"  name: {commonName}@kubernetes",
                    $"current-context: {commonName}@kubernetes",
                    "kind: Config",
                    "users:",
                    $"- name: {commonName}",
                    "  user:",
                    $"    client-certificate-data: {clientCert}",
                    $"    client-key-data: {clientKey}",
                    string.Empty));
                File.SetUnixFileMode(path, mode);
            }

            var kubelet = Path.Combine(directory, "kubelet.conf");
            await File.WriteAllTextAsync(kubelet, string.Join('\n',
                "apiVersion: v1",
                "clusters:",
                "- cluster:",
                $"    certificate-authority-data: {ca}",
                "    server: https://127.0.0.1:6443",
                "  name: kubernetes",
                "kind: Config",
                "users:",
                $"- name: system:node:{node}",
                "  user:",
                "    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem",
                "    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem",
                string.Empty));
            File.SetUnixFileMode(kubelet, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>Copies the tree to another node's PKI dir, keeping modes.</summary>
    public async Task CopyToAsync(string target)
    {
        Directory.CreateDirectory(target);
        await Tools.CheckAsync("cp", "-a", Root + "/.", target);
    }

    private static Task CaAsync(string directory, string name, string commonName) =>
        Tools.CheckAsync("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
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
            "-CAcreateserial", "-days", "365", "-extfile", ext, "-out", Path.Combine(directory, $"{name}.crt"));
    }
}
