using ClusterBackup.Configuration;

namespace ClusterBackup.Sources.Ssh;

/// <summary>
/// One SSH session per node for the whole run; a node that could not be reached is not retried, but
/// a session whose connection dropped is replaced by a new one when next asked for (so that a
/// restore's undo still reaches a node whose connection was cut in the middle of a step).
/// Connections may be started ahead (<see cref="ConnectAhead"/>) and are shared by concurrent callers.
/// </summary>
internal sealed class NodeSessions(SshNodeConnector connector) : IDisposable
{
    private readonly Dictionary<string, Task<NodeSession>> _connections = [];
    private bool _disposed;

    /// <summary>Starts connecting to the nodes, so that work done meanwhile (reading storage) overlaps the SSH handshakes.</summary>
    public void ConnectAhead(IEnumerable<ControlPlaneSettings> nodes, CancellationToken cancellationToken)
    {
        foreach (var node in nodes)
        {
            // Observed by the GetAsync that needs it; a node never asked for fails silently.
            _ = Connection(node, cancellationToken).ContinueWith(
                static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }

    /// <summary>The node's session, connecting on first use; throws the node's connect failure, every time.</summary>
    public Task<NodeSession> GetAsync(ControlPlaneSettings node, CancellationToken cancellationToken) =>
        Connection(node, cancellationToken).WaitAsync(cancellationToken);

    private Task<NodeSession> Connection(ControlPlaneSettings node, CancellationToken cancellationToken)
    {
        lock (_connections)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_connections.TryGetValue(node.Name, out var connection) || Dropped(connection))
            {
                connection?.Result.Dispose();
                _connections[node.Name] = connection = connector.ConnectAsync(node, cancellationToken);
            }

            return connection;
        }
    }

    private static bool Dropped(Task<NodeSession> connection) => connection.IsCompletedSuccessfully && !connection.Result.IsConnected;

    public void Dispose()
    {
        List<Task<NodeSession>> connections;
        lock (_connections)
        {
            _disposed = true;
            connections = [.. _connections.Values];
            _connections.Clear();
        }

        foreach (var connection in connections)
        {
            // A connection still being made is closed when it is made.
            _ = connection.ContinueWith(
                static t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }
}
