namespace ClusterBackup.Backup;

/// <summary>A cluster's backup did not commit; <see cref="Exception.Message"/> is one line naming cluster, node and step.</summary>
internal sealed class BackupFailedException(string cluster, string? node, string step, string reason, Exception? inner = null)
    : Exception(node is null ? $"cluster {cluster}: {step}: {reason}" : $"cluster {cluster}: node {node}: {step}: {reason}", inner)
{
    public string Cluster { get; } = cluster;

    public string? Node { get; } = node;

    public string Step { get; } = step;

    /// <summary>What went wrong, without cluster, node and step.</summary>
    public string Reason { get; } = reason;
}

/// <summary>The steps a failure names. Node steps (connect, pki archive, …) come from the sources.</summary>
internal static class BackupSteps
{
    public const string Reserve = "reserve set id";
    public const string EtcdSnapshot = "etcd snapshot";
    public const string Storage = "storage";
    public const string Backup = "backup";
}
