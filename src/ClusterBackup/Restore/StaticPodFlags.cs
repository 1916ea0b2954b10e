namespace ClusterBackup.Restore;

/// <summary>The values a restore needs from a member's static pod manifest, <c>etcd.yaml</c>.</summary>
internal sealed record StaticPodFlags(string Name, string InitialCluster, string InitialAdvertisePeerUrls)
{
    /// <summary>Reads <c>- --flag=value</c> items (quoted or not) of the etcd container's command; null when one is missing.</summary>
    public static StaticPodFlags? Parse(string manifest)
    {
        var flags = manifest.Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.StartsWith("- ", StringComparison.Ordinal))
            .Select(l => l[2..].Trim().Trim('"', '\'')) // a YAML item may be quoted
            .Where(l => l.StartsWith("--", StringComparison.Ordinal) && l.Contains('=', StringComparison.Ordinal))
            .Select(l => l[2..])
            .GroupBy(l => l[..l.IndexOf('=', StringComparison.Ordinal)])
            .ToDictionary(g => g.Key, g => g.Last()[(g.Key.Length + 1)..], StringComparer.Ordinal);
        return flags.TryGetValue("name", out var name)
               && flags.TryGetValue("initial-cluster", out var cluster)
               && flags.TryGetValue("initial-advertise-peer-urls", out var peers)
            ? new StaticPodFlags(name, cluster, peers)
            : null;
    }
}
