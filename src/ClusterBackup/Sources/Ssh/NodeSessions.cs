using ClusterBackup.Configuration;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Ssh;

namespace ClusterBackup.Sources.Ssh;

/// <summary>One SSH session per node for the whole run; a node that could not be reached is not retried.</summary>
internal sealed class NodeSessions(SshNodeConnector connector) : IDisposable
{
    private readonly Dictionary<string, NodeSession> _open = [];
    private readonly Dictionary<string, NodeOperationException> _failed = [];

    public async Task<NodeSession> GetAsync(ControlPlaneSettings node, CancellationToken cancellationToken)
    {
        if (_open.TryGetValue(node.Name, out var session))
        {
            return session;
        }

        if (_failed.TryGetValue(node.Name, out var failure))
        {
            throw failure;
        }

        try
        {
            session = await connector.ConnectAsync(node, cancellationToken);
            _open[node.Name] = session;
            return session;
        }
        catch (NodeOperationException ex)
        {
            _failed[node.Name] = ex;
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var session in _open.Values)
        {
            session.Dispose();
        }

        _open.Clear();
    }
}
