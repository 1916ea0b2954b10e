using ClusterBackup.Configuration;

namespace ClusterBackup.Sources.Etcd;

/// <summary>The kubeadm-layout files an etcd client authenticates with, under the node's PKI dir.</summary>
internal sealed record EtcdClientFiles(string CaCert, string ClientCert, string ClientKey)
{
    /// <summary>etcdctl's TLS flags for these files, quoted for the node's shell.</summary>
    public string EtcdctlFlags =>
        $"--cacert={Ssh.ShellQuote.Quote(CaCert)} --cert={Ssh.ShellQuote.Quote(ClientCert)} --key={Ssh.ShellQuote.Quote(ClientKey)}";

    public static EtcdClientFiles For(PathOptions paths)
    {
        var etcd = paths.Pki.TrimEnd('/') + "/etcd";
        return new EtcdClientFiles($"{etcd}/ca.crt", $"{etcd}/healthcheck-client.crt", $"{etcd}/healthcheck-client.key");
    }
}
