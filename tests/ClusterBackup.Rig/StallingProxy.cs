using System.Net;
using System.Net.Sockets;

namespace ClusterBackup.Rig;

/// <summary>
/// A TCP proxy on loopback in front of a server that stops forwarding a connection's requests once
/// it has passed <c>stallAfterBytes</c>: slow or hung storage, for tests of what is in flight.
/// Responses, and connections under the limit, flow normally.
/// </summary>
public sealed class StallingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _clients = [];
    private readonly int _targetPort;
    private readonly long _stallAfterBytes;
    private int _stalled;

    public StallingProxy(int targetPort, long stallAfterBytes)
    {
        _targetPort = targetPort;
        _stallAfterBytes = stallAfterBytes;
        _listener.Start();
        _ = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>How many connections are stalled now.</summary>
    public int Stalled => Volatile.Read(ref _stalled);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            var server = new TcpClient();
            lock (_clients)
            {
                _clients.Add(client);
                _clients.Add(server);
            }

            _ = Task.Run(async () =>
            {
                try
                {
                    await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
                    await Task.WhenAny(
                        PumpAsync(client.GetStream(), server.GetStream(), _stallAfterBytes),
                        PumpAsync(server.GetStream(), client.GetStream(), long.MaxValue));
                }
                catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
                {
                    // a side closed
                }
                finally
                {
                    client.Dispose();
                    server.Dispose();
                }
            });
        }
    }

    private async Task PumpAsync(Stream from, Stream to, long limit)
    {
        var buffer = new byte[64 * 1024];
        long total = 0;
        while (true)
        {
            var read = await from.ReadAsync(buffer, _stop.Token);
            if (read == 0)
            {
                return;
            }

            total += read;
            if (total > limit)
            {
                Interlocked.Increment(ref _stalled);
                try
                {
                    await Task.Delay(Timeout.Infinite, _stop.Token);
                }
                finally
                {
                    Interlocked.Decrement(ref _stalled);
                }
            }

            await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_clients)
        {
            foreach (var client in _clients)
            {
                client.Dispose();
            }
        }

        _stop.Dispose();
        return ValueTask.CompletedTask;
    }
}
