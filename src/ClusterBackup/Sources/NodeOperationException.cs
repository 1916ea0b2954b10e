namespace ClusterBackup.Sources;

/// <summary>A step on a control-plane node failed; the message is meant for the operator.</summary>
internal sealed class NodeOperationException(string node, NodeStep step, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public string Node { get; } = node;

    /// <summary>What was being done on the node.</summary>
    public NodeStep Step { get; } = step;
}

/// <summary>What the agent does on a node during a backup: a closed set, so callers decide on values the compiler knows.</summary>
internal enum NodeStep
{
    /// <summary>Opening the SSH session: a node that is down, or refuses us.</summary>
    Connect,
    EtcdSnapshot,
    PkiArchive,
    ManifestsArchive,
    KubeconfigsArchive,
    EncryptionConfigArchive,
}

internal static class NodeSteps
{
    /// <summary>The step as messages name it.</summary>
    public static string Describe(this NodeStep step) => step switch
    {
        NodeStep.Connect => "connect",
        NodeStep.EtcdSnapshot => "etcd snapshot",
        NodeStep.PkiArchive => "pki archive",
        NodeStep.ManifestsArchive => "manifests archive",
        NodeStep.KubeconfigsArchive => "kubeconfigs archive",
        NodeStep.EncryptionConfigArchive => "encryption config archive",
        _ => throw new ArgumentOutOfRangeException(nameof(step), step, null),
    };
}
