using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Support;

/// <summary>The real cluster-backup binary running <c>run</c>, its log captured, its metrics scraped.</summary>
internal sealed class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private DaemonProcess(Process process, int metricsPort)
    {
        _process = process;
        MetricsPort = metricsPort;
    }

    public int MetricsPort { get; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static async Task<DaemonProcess> StartAsync(JsonObject config)
    {
        var port = Tools.FreePort();
        config["ClusterBackup"]!["Metrics"] = new JsonObject { ["Listen"] = $"127.0.0.1:{port}" };
        var path = await CliRunner.WriteConfigAsync(config);
        var info = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "cluster-backup"))
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "run", "--config", path })
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in S3Server.Credentials)
        {
            info.Environment[key] = value;
        }

        var daemon = new DaemonProcess(new Process { StartInfo = info }, port);
        daemon._process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        daemon._process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        daemon._process.Start();
        daemon._process.BeginOutputReadLine();
        daemon._process.BeginErrorReadLine();
        return daemon;
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.AppendLine(line);
            }
        }
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

    public async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"the daemon exited ({_process.ExitCode}) before {what}\n{Log}");
            }

            if (await condition())
            {
                return;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"{what}: not within {timeout}\n{Log}");
    }

    /// <summary>Sends SIGTERM, as systemd stops the unit, and returns the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        await Tools.CheckAsync("kill", "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var wait = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(wait.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _http.Dispose();
    }
}
