using System.Net;
using System.Net.Sockets;
using System.Text;
using ClusterBackup.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Metrics;

/// <summary>
/// Serves <c>GET /metrics</c> (Prometheus text format) and <c>GET /healthz</c> on <c>Metrics:Listen</c>:
/// plain HTTP/1.1 on a socket, one request per connection. Not .NET's managed <c>HttpListener</c>:
/// on Linux its <c>Start()</c> throws when a scrape arrives while it starts, which stopped the daemon.
/// A few connections are answered at once; one that does not send its request in time is dropped.
/// </summary>
internal sealed partial class MetricsListener(MetricsOptions options, AgentMetrics metrics, AgentHealth health, ILogger<MetricsListener> logger) : BackgroundService
{
    private const int MaxRequestBytes = 8192;
    private const int MaxConnections = 8;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (string.IsNullOrEmpty(options.Listen) || !SettingsValidator.TryParseListen(options.Listen, out var host, out var port))
        {
            return;
        }

        Socket socket;
        try
        {
            socket = await BindAsync(host, port, stoppingToken);
        }
        catch (SocketException ex)
        {
            LogCannotListen(options.Listen, ex.Message);
            throw new InvalidOperationException($"cannot listen on Metrics:Listen {options.Listen}: {ex.Message}", ex);
        }

        using var listening = socket;
        using var connections = new SemaphoreSlim(MaxConnections);
        var answering = new List<Task>();
        LogListening(options.Listen);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await connections.WaitAsync(stoppingToken);
                Socket client;
                try
                {
                    client = await socket.AcceptAsync(stoppingToken);
                }
                catch (SocketException ex)
                {
                    // A connection reset before it was accepted, or no file descriptor left (wait a little
                    // then): not a reason to stop serving.
                    connections.Release();
                    if (ex.SocketErrorCode is not (SocketError.ConnectionAborted or SocketError.ConnectionReset))
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(100), stoppingToken);
                    }

                    continue;
                }

                answering.RemoveAll(t => t.IsCompleted);
                answering.Add(AnswerAsync(client, connections, stoppingToken));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await Task.WhenAll(answering);
    }

    private static async Task<Socket> BindAsync(string host, int port, CancellationToken cancellationToken)
    {
        var literal = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        var address = literal is "0.0.0.0" or "*" or "+" ? IPAddress.Any
            : IPAddress.TryParse(literal, out var parsed) ? parsed
            : (await Dns.GetHostAddressesAsync(literal, cancellationToken)) is { Length: > 0 } resolved
                ? resolved.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? resolved[0]
                : throw new SocketException((int)SocketError.HostNotFound);
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(64);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task AnswerAsync(Socket client, SemaphoreSlim connections, CancellationToken stoppingToken)
    {
        await Task.Yield();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        timeout.CancelAfter(RequestTimeout);
        try
        {
            await using var stream = new NetworkStream(client, ownsSocket: true);
            var (status, contentType, body) = await RespondAsync(await ReadRequestLineAsync(stream, timeout.Token), timeout.Token);
            var head = $"HTTP/1.1 {status} {Reason(status)}\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head), timeout.Token);
            await stream.WriteAsync(body, timeout.Token);
            client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the scraper went away, or did not send its request in time
        }
        finally
        {
            client.Dispose();
            connections.Release();
        }
    }

    /// <summary>The request's first line, once its head has arrived (the rest is not needed); null when it is not HTTP.</summary>
    private static async Task<string?> ReadRequestLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxRequestBytes];
        var filled = 0;
        while (filled < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            if (read == 0)
            {
                return null;
            }

            filled += read;
            var head = buffer.AsSpan(0, filled);
            if (head.IndexOf("\r\n\r\n"u8) >= 0 || head.IndexOf("\n\n"u8) >= 0)
            {
                return Encoding.ASCII.GetString(head[..head.IndexOf((byte)'\n')]).TrimEnd('\r');
            }
        }

        return null;
    }

    private async Task<(int Status, string ContentType, byte[] Body)> RespondAsync(string? requestLine, CancellationToken cancellationToken)
    {
        const string Text = "text/plain; charset=utf-8";
        var parts = requestLine?.Split(' ');
        if (parts is not [var method, var target, var version] || !version.StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            return (400, Text, "bad request\n"u8.ToArray());
        }

        var path = Uri.TryCreate(target, UriKind.Absolute, out var absolute) && absolute.Scheme is "http" ? absolute.AbsolutePath : target.Split('?')[0];
        switch (method, path)
        {
            case ("GET", "/metrics"):
                using (var body = new MemoryStream())
                {
                    await metrics.WriteAsync(body, cancellationToken);
                    return (200, "text/plain; version=0.0.4; charset=utf-8", body.ToArray());
                }

            case ("GET", "/healthz"):
                return (health.Healthy ? 200 : 503, Text, Encoding.UTF8.GetBytes(health.Describe() + "\n"));
            default:
                return (404, Text, "not found\n"u8.ToArray());
        }
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Service Unavailable",
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Serving /metrics and /healthz on {Listen}")]
    private partial void LogListening(string listen);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Cannot listen on {Listen}: {Reason}")]
    private partial void LogCannotListen(string listen, string reason);
}
