using System.Text.Json.Nodes;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Support;

/// <summary>The real cluster-backup binary running <c>run</c>, its log captured, its metrics scraped.</summary>
internal sealed class DaemonProcess : IAsyncDisposable
{
    private readonly ExternalProcess _process;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private DaemonProcess(ExternalProcess process, int metricsPort)
    {
        _process = process;
        MetricsPort = metricsPort;
    }

    public int MetricsPort { get; }

    /// <summary>Everything the daemon logged so far (compact JSON: its output is not a terminal).</summary>
    public string Log => _process.ReadLog();

    /// <param name="binary">The binary to run: this build's by default; the package's installed one in its test.</param>
    /// <param name="metricsPort">The port of Metrics:Listen: a free one by default.</param>
    public static async Task<DaemonProcess> StartAsync(JsonObject config, string name = "cluster-backup-run", string? binary = null, int? metricsPort = null)
    {
        var port = metricsPort ?? Tools.FreePort();
        config["ClusterBackup"]!["Metrics"] = new JsonObject { ["Listen"] = $"127.0.0.1:{port}" };
        var path = await CliRunner.WriteConfigAsync(config);
        var process = ExternalProcess.Start(
            name, binary ?? Path.Combine(AppContext.BaseDirectory, "cluster-backup"), ["run", "--config", path],
            Path.GetDirectoryName(path)!, S3Server.Credentials);
        return new DaemonProcess(process, port);
    }

    public async Task<string> ScrapeAsync() => await _http.GetStringAsync($"http://127.0.0.1:{MetricsPort}/metrics");

    /// <summary>The /healthz status code; 0 while nothing listens yet.</summary>
    public async Task<int> HealthAsync()
    {
        try
        {
            return (int)(await _http.GetAsync($"http://127.0.0.1:{MetricsPort}/healthz")).StatusCode;
        }
        catch (HttpRequestException)
        {
            return 0;
        }
    }

    /// <summary>The value of one series, e.g. <c>cluster_backup_sets{cluster="x"}</c>; null while it is absent or unreachable.</summary>
    public async Task<double?> ValueAsync(string series)
    {
        string text;
        try
        {
            text = await ScrapeAsync();
        }
        catch (HttpRequestException)
        {
            return null;
        }

        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        return line is null ? null : double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    public Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout) =>
        _process.WaitUntilAsync(condition, what, timeout);

    /// <summary>SIGKILL: the agent dies where it stands, as on a power loss or an OOM kill.</summary>
    public Task KillAsync() => _process.StopAsync();

    public bool HasExited => _process.HasExited;

    /// <summary>Sends SIGTERM, as systemd stops the unit, and returns the exit code.</summary>
    public Task<int> TerminateAsync(TimeSpan timeout) => _process.TerminateAsync(timeout);

    /// <summary>Waits for the daemon to exit by itself (a refused configuration) and returns the exit code.</summary>
    public Task<int> WaitForExitAsync(TimeSpan timeout) => _process.WaitForExitAsync(timeout);

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        _http.Dispose();
    }
}
