using System.Net;
using System.Net.Sockets;
using System.Text;
using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using ClusterBackup.Rig;
using Microsoft.Extensions.Logging.Abstractions;
using Prometheus;

namespace ClusterBackup.Tests.Metrics;

public sealed class MetricsListenerTests
{
    [Fact]
    public async Task Scrapes_that_arrive_while_it_starts_are_answered_and_it_keeps_serving()
    {
        // .NET's managed HttpListener threw from Start() when a connection arrived while it started,
        // which stopped the daemon. That window is microseconds wide, so this cannot cause it at will;
        // it connects as fast as it can while the listener comes up, and the listener must keep serving.
        for (var round = 0; round < 20; round++)
        {
            var port = Tools.FreePort();
            using var stop = new CancellationTokenSource();

            // Threads of their own: connecting in a loop on the thread pool would starve the listener's start.
            var hammers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                        client.Connect(IPAddress.Loopback, port);
                    }
                    catch (SocketException)
                    {
                    }
                }
            }) { IsBackground = true }).ToList();
            hammers.ForEach(t => t.Start());
            using var listener = Listener(port, out var health);
            await StartAsync(listener, port);
            Assert.Equal(HttpStatusCode.OK, (await GetAsync(port, "/metrics")).Status);
            await stop.CancelAsync(); // not joined: a connect that found the backlog full waits out a SYN retransmit
            Assert.False(listener.ExecuteTask!.IsCompleted, listener.ExecuteTask.Exception?.ToString());
            await listener.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task It_answers_metrics_health_and_unknown_paths_and_a_silent_client_does_not_hold_up_others()
    {
        var port = Tools.FreePort();
        using var listener = Listener(port, out var health);
        await StartAsync(listener, port);

        using var silent = new TcpClient();
        await silent.ConnectAsync(IPAddress.Loopback, port); // sends nothing

        var metrics = await GetAsync(port, "/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.Status);
        Assert.StartsWith("text/plain; version=0.0.4", metrics.ContentType, StringComparison.Ordinal);
        Assert.Contains("cluster_backup_build_info", metrics.Body, StringComparison.Ordinal);

        var notReady = await GetAsync(port, "/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.Status);
        Assert.Equal("not ready\n", notReady.Body);
        health.MarkReady();
        Assert.Equal((HttpStatusCode.OK, "ok\n"), ((await GetAsync(port, "/healthz?x=1")).Status, (await GetAsync(port, "/healthz")).Body));
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(port, "/other")).Status);

        using var raw = new TcpClient();
        await raw.ConnectAsync(IPAddress.Loopback, port);
        await raw.GetStream().WriteAsync("not http at all\r\n\r\n"u8.ToArray());
        var answer = await new StreamReader(raw.GetStream()).ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", answer, StringComparison.Ordinal);

        await listener.StopAsync(CancellationToken.None);
        Assert.True(listener.ExecuteTask!.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_port_in_use_fails_start_up_with_a_message_naming_the_setting()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        using var listener = Listener(port, out _);

        await listener.StartAsync(CancellationToken.None);

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => listener.ExecuteTask!);
        Assert.StartsWith($"cannot listen on Metrics:Listen 127.0.0.1:{port}: ", failure.Message, StringComparison.Ordinal);
    }

    private static MetricsListener Listener(int port, out AgentHealth health)
    {
        health = new AgentHealth();
        return new MetricsListener(new MetricsOptions { Listen = $"127.0.0.1:{port}" }, new AgentMetrics(new CollectorRegistry(), "1.2.3"), health,
            NullLogger<MetricsListener>.Instance);
    }

    /// <summary>Starts it and waits until its port accepts connections (it binds on its own task).</summary>
    private static async Task StartAsync(MetricsListener listener, int port)
    {
        await listener.StartAsync(CancellationToken.None);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (attempt < 200 && !listener.ExecuteTask!.IsCompleted)
            {
                await Task.Delay(50);
            }
        }
    }

    private static async Task<(HttpStatusCode Status, string? ContentType, string Body)> GetAsync(int port, string path)
    {
        using var http = new HttpClient();
        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}{path}"));
        return (response.StatusCode, response.Content.Headers.ContentType?.ToString(), await response.Content.ReadAsStringAsync());
    }
}
