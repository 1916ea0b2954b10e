using ClusterBackup.Sources;

namespace ClusterBackup.Backup;

/// <summary>A cluster's backup did not commit; <see cref="Exception.Message"/> is one line naming cluster, node and step.</summary>
internal sealed class BackupFailedException(string cluster, string? node, BackupStep step, string reason, Exception? inner = null)
    : Exception(node is null ? $"cluster {cluster}: {step.Describe()}: {reason}" : $"cluster {cluster}: node {node}: {step.Describe()}: {reason}", inner)
{
    public string Cluster { get; } = cluster;

    public string? Node { get; } = node;

    public BackupStep Step { get; } = step;

    /// <summary>What went wrong, without cluster, node and step.</summary>
    public string Reason { get; } = reason;
}

/// <summary>Where a backup run failed: a closed set, named in messages through one table.</summary>
internal enum BackupStep
{
    RunLock,
    ReserveSetId,
    Connect,
    EtcdSnapshot,
    PkiArchive,
    ManifestsArchive,
    KubeconfigsArchive,
    EncryptionConfigArchive,
    Storage,

    /// <summary>A failure the agent did not foresee (a bug): the message says "unexpected".</summary>
    Backup,
}

internal static class BackupSteps
{
    /// <summary>The step as messages and logs name it: the one table.</summary>
    public static string Describe(this BackupStep step) => step switch
    {
        BackupStep.RunLock => "take the run lock",
        BackupStep.ReserveSetId => "reserve set id",
        BackupStep.Connect => NodeStep.Connect.Describe(),
        BackupStep.EtcdSnapshot => NodeStep.EtcdSnapshot.Describe(),
        BackupStep.PkiArchive => NodeStep.PkiArchive.Describe(),
        BackupStep.ManifestsArchive => NodeStep.ManifestsArchive.Describe(),
        BackupStep.KubeconfigsArchive => NodeStep.KubeconfigsArchive.Describe(),
        BackupStep.EncryptionConfigArchive => NodeStep.EncryptionConfigArchive.Describe(),
        BackupStep.Storage => "storage",
        BackupStep.Backup => "backup",
        _ => throw new ArgumentOutOfRangeException(nameof(step), step, null),
    };

    /// <summary>A node's step, as a step of the run.</summary>
    public static BackupStep Of(NodeStep step) => step switch
    {
        NodeStep.Connect => BackupStep.Connect,
        NodeStep.EtcdSnapshot => BackupStep.EtcdSnapshot,
        NodeStep.PkiArchive => BackupStep.PkiArchive,
        NodeStep.ManifestsArchive => BackupStep.ManifestsArchive,
        NodeStep.KubeconfigsArchive => BackupStep.KubeconfigsArchive,
        NodeStep.EncryptionConfigArchive => BackupStep.EncryptionConfigArchive,
        _ => throw new ArgumentOutOfRangeException(nameof(step), step, null),
    };
}
