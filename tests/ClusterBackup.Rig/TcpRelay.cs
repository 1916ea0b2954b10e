using System.Net;
using System.Net.Sockets;

namespace ClusterBackup.Rig;

/// <summary>
/// A TCP relay on a fixed loopback port in front of a server (S3, sshd) that a test can cut, as a
/// dropped network or a dead server would, and bring back on the same port.
/// </summary>
public sealed class TcpRelay : IAsyncDisposable
{
    private readonly int _targetPort;
    private readonly List<TcpClient> _connections = [];
    private TcpListener? _listener;
    private CancellationTokenSource _stop = new();
    private long _forwarded;
    private long _returned;
    private volatile TaskCompletionSource _flowing = Flowing();

    /// <param name="targetPort">The server's port.</param>
    /// <param name="port">The relay's port; a free one when null.</param>
    /// <param name="bytesPerSecond">Slows each direction of every connection to this rate, so a test can cut a transfer midway; unlimited when null.</param>
    public TcpRelay(int targetPort, int? port = null, int? bytesPerSecond = null)
    {
        _targetPort = targetPort;
        Port = port ?? Tools.FreePort();
        BytesPerSecond = bytesPerSecond;
    }

    public int? BytesPerSecond { get; }

    /// <summary>Bytes passed back from the server since the relay started.</summary>
    public long Returned => Interlocked.Read(ref _returned);

    public int Port { get; }

    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>Bytes passed towards the server since the relay started.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    public TcpRelay Start()
    {
        _stop = new CancellationTokenSource();
        _flowing = Flowing();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        _ = AcceptAsync(_listener, _stop.Token);
        return this;
    }

    /// <summary>Closes every connection (a reset) and stops listening: nothing answers on the port.</summary>
    public void Cut()
    {
        _stop.Cancel();
        _listener?.Stop();
        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                if (connection.Client is { } socket)
                {
                    socket.LingerState = new LingerOption(true, 0);
                }

                connection.Dispose();
            }

            _connections.Clear();
        }
    }

    /// <summary>
    /// Stops passing bytes either way but keeps every connection open, as a node that stopped
    /// answering (a hung host, a network that drops packets) does: no FIN, no reset.
    /// </summary>
    public void Stall() => _flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    private static TaskCompletionSource Flowing()
    {
        var flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        flowing.SetResult();
        return flowing;
    }

    private async Task AcceptAsync(TcpListener listener, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop);
            }
            catch (Exception) when (stop.IsCancellationRequested || !listener.Server.IsBound)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }

            _ = RelayAsync(client, stop);
        }
    }

    private async Task RelayAsync(TcpClient client, CancellationToken stop)
    {
        var server = new TcpClient();
        lock (_connections)
        {
            _connections.Add(client);
            _connections.Add(server);
        }

        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _targetPort, stop);
            await Task.WhenAny(
                PumpAsync(client.GetStream(), server.GetStream(), count: true, stop),
                PumpAsync(server.GetStream(), client.GetStream(), count: false, stop));
        }
        catch (Exception)
        {
            // cut, or a side closed
        }
        finally
        {
            lock (_connections)
            {
                _connections.Remove(client);
                _connections.Remove(server);
            }

            client.Dispose();
            server.Dispose();
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, bool count, CancellationToken stop)
    {
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer, stop)) > 0)
        {
            await _flowing.Task.WaitAsync(stop);
            await to.WriteAsync(buffer.AsMemory(0, read), stop);
            Interlocked.Add(ref count ? ref _forwarded : ref _returned, read);
            if (BytesPerSecond is { } rate)
            {
                await Task.Delay(TimeSpan.FromSeconds((double)read / rate), stop);
            }
        }

        to.Socket.Shutdown(SocketShutdown.Send);
    }

    public ValueTask DisposeAsync()
    {
        Cut();
        return ValueTask.CompletedTask;
    }
}
