namespace ClusterBackup.Sources;

/// <summary>A step on a control-plane node failed; the message is meant for the operator.</summary>
internal sealed class NodeOperationException(string node, string step, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public string Node { get; } = node;

    /// <summary>What was being done: connect, etcd snapshot, pki archive, manifests archive.</summary>
    public string Step { get; } = step;
}

/// <summary>Steps on a node that callers decide on.</summary>
internal static class NodeSteps
{
    /// <summary>Opening the SSH session: a node that is down, or refuses us.</summary>
    public const string Connect = "connect";
}
