using ClusterBackup.Restore;

namespace ClusterBackup.Tests.Restore;

public sealed class StaticPodFlagsTests
{
    private const string Manifest = """
        apiVersion: v1
        kind: Pod
        spec:
          containers:
          - command:
            - etcd
            - --advertise-client-urls=https://10.200.0.3:2379
            - --initial-advertise-peer-urls=https://10.200.0.3:2380
            - --initial-cluster=cp1=https://10.200.0.3:2380,cp2=https://10.200.0.4:2380
            - "--name=cp1"
            - --data-dir=/var/lib/etcd
        """;

    [Fact]
    public void Reads_the_flags_a_restore_needs_from_kubeadm_etcd_yaml()
    {
        var flags = StaticPodFlags.Parse(Manifest);

        Assert.Equal(new StaticPodFlags("cp1", "cp1=https://10.200.0.3:2380,cp2=https://10.200.0.4:2380", "https://10.200.0.3:2380"), flags);
    }

    [Fact]
    public void The_last_of_a_repeated_flag_wins_as_etcd_reads_it() =>
        Assert.Equal("cp9", StaticPodFlags.Parse(Manifest + "\n    - --name=cp9\n")!.Name);

    [Fact]
    public void A_manifest_without_a_needed_flag_gives_nothing() =>
        Assert.Null(StaticPodFlags.Parse(Manifest.Replace("- --initial-cluster=", "- --not-it=", StringComparison.Ordinal)));
}
