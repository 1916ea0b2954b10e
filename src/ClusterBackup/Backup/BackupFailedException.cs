namespace ClusterBackup.Backup;

/// <summary>A cluster's backup did not commit; <see cref="Exception.Message"/> is one line naming cluster, node and step.</summary>
internal sealed class BackupFailedException(string cluster, string? node, string step, string reason, Exception? inner = null)
    : Exception(node is null ? $"cluster {cluster}: {step}: {reason}" : $"cluster {cluster}: node {node}: {step}: {reason}", inner)
{
    public string Cluster { get; } = cluster;

    public string? Node { get; } = node;

    public string Step { get; } = step;
}
