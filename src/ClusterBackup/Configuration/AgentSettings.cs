namespace ClusterBackup.Configuration;

/// <summary>The configuration after inheritance (Defaults → cluster → control plane) and validation.</summary>
internal sealed record AgentSettings(
    string ConfigPath,
    StorageOptions Storage,
    CompressionOptions Compression,
    IReadOnlyList<ClusterSettings> Clusters)
{
    public ClusterSettings? FindCluster(string name) =>
        Clusters.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.Ordinal));
}

internal sealed record ClusterSettings(
    string Name,
    string? Schedule,
    TimeZoneInfo TimeZone,
    IReadOnlyList<ControlPlaneSettings> ControlPlanes);

internal sealed record ControlPlaneSettings(
    string Name,
    string Address,
    SshOptions Ssh,
    EtcdOptions Etcd,
    PathOptions Paths);
