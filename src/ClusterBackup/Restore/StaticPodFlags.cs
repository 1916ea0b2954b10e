using ClusterBackup.Sources;

namespace ClusterBackup.Restore;

/// <summary>The values a restore needs from a member's static pod manifest, <c>etcd.yaml</c>.</summary>
internal sealed record StaticPodFlags(string Name, string InitialCluster, string InitialAdvertisePeerUrls)
{
    /// <summary>Reads <c>- --flag=value</c> items (quoted or not) of the etcd container's command; null when one is missing.</summary>
    public static StaticPodFlags? Parse(string manifest)
    {
        var flags = StaticPodManifest.Flags(manifest);
        return flags.TryGetValue("name", out var name)
               && flags.TryGetValue("initial-cluster", out var cluster)
               && flags.TryGetValue("initial-advertise-peer-urls", out var peers)
            ? new StaticPodFlags(name, cluster, peers)
            : null;
    }
}
