using ClusterBackup.Certificates;

namespace ClusterBackup.Tests.Certificates;

public sealed class PkiInventoryTests
{
    private static readonly string[] Kubeadm =
    [
        "", "ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key",
        "front-proxy-client.crt", "front-proxy-client.key", "etcd", "etcd/ca.crt", "etcd/ca.key", "etcd/server.crt", "etcd/server.key",
    ];

    [Fact]
    public void A_kubeadm_PKI_dir_lacks_nothing()
    {
        var entries = Kubeadm.ToHashSet(StringComparer.Ordinal);

        Assert.Null(PkiInventory.NotAPki(entries, "/etc/kubernetes/pki"));
        Assert.Empty(PkiInventory.Missing(entries));
    }

    [Fact]
    public void External_CA_mode_lacks_the_CA_keys_and_is_still_a_PKI()
    {
        var entries = Kubeadm.Where(e => e is not ("ca.key" or "front-proxy-ca.key")).ToHashSet(StringComparer.Ordinal);

        Assert.Null(PkiInventory.NotAPki(entries, "/etc/kubernetes/pki"));
        Assert.Equal(["ca.key", "front-proxy-ca.key"], PkiInventory.Missing(entries));
    }

    [Theory]
    [InlineData("")]
    [InlineData("|pki|pki/ca.crt|admin.conf")] // Paths.Pki set to /etc/kubernetes
    [InlineData("|etcd|etcd/ca.crt|etcd/ca.key")]
    public void An_archive_without_the_cluster_CA_at_its_top_is_not_a_PKI(string names)
    {
        var entries = names.Split('|').ToHashSet(StringComparer.Ordinal);

        Assert.Equal(
            names == string.Empty ? "/srv/pki is empty: it is not a kubeadm PKI dir; set Paths.Pki to the dir with the cluster's CAs"
                : "/srv/pki holds no ca.crt at its top: it is not a kubeadm PKI dir; set Paths.Pki to the dir with the cluster's CAs",
            PkiInventory.NotAPki(entries, "/srv/pki"));
        Assert.Contains("ca.crt", PkiInventory.Missing(entries));
    }
}
