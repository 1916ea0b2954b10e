using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using ClusterBackup.Configuration;

namespace ClusterBackup.Restore;

/// <summary>What a drill found in the restored snapshot.</summary>
internal sealed record DrillResult(long Revision, long KeyCount);

/// <summary>
/// A restore drill on the workstation: <c>etcdctl snapshot restore</c> into a temp dir, a throwaway
/// etcd on loopback free ports, its revision and key count read back, then everything removed.
/// </summary>
internal sealed class EtcdDrill(VerifyOptions options)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Throws <see cref="DrillFailedException"/> with what went wrong.</summary>
    public async Task<DrillResult> RunAsync(string snapshotFile, CancellationToken cancellationToken = default)
    {
        var work = Directory.CreateTempSubdirectory("cluster-backup-drill-").FullName;
        var peer = FreePort();
        var client = FreePort();
        var data = Path.Combine(work, "data");
        Process? etcd = null;
        try
        {
            var restore = await RunAsync(options.Etcdctl,
                ["snapshot", "restore", snapshotFile, "--data-dir", data, "--name", "drill",
                 "--initial-cluster", $"drill=http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}"],
                cancellationToken);
            if (restore.ExitCode != 0)
            {
                throw new DrillFailedException($"etcdctl snapshot restore failed: {LastLine(restore.Error)}");
            }

            etcd = Start(options.Etcd,
                ["--name", "drill", "--data-dir", data,
                 "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
                 "--listen-peer-urls", $"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}",
                 "--initial-cluster", $"drill=http://127.0.0.1:{peer}", "--log-outputs", "stderr", "--logger", "zap"]);
            var endpoint = $"--endpoints=http://127.0.0.1:{client}";
            var deadline = DateTime.UtcNow + StartTimeout;
            while (true)
            {
                if (etcd.HasExited)
                {
                    throw new DrillFailedException($"the restored etcd exited with {etcd.ExitCode}");
                }

                var health = await RunAsync(options.Etcdctl, [endpoint, "--command-timeout=2s", "endpoint", "health"], cancellationToken);
                if (health.ExitCode == 0)
                {
                    break;
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new DrillFailedException($"the restored etcd did not become healthy within {StartTimeout.TotalSeconds:0}s");
                }

                await Task.Delay(200, cancellationToken);
            }

            var range = await RunAsync(options.Etcdctl, [endpoint, "get", string.Empty, "--prefix", "--keys-only", "--limit=1", "-w", "json"], cancellationToken);
            if (range.ExitCode != 0)
            {
                throw new DrillFailedException($"reading the restored etcd failed: {LastLine(range.Error)}");
            }

            using var json = JsonDocument.Parse(range.Output);
            return new DrillResult(
                json.RootElement.GetProperty("header").GetProperty("revision").GetInt64(),
                json.RootElement.TryGetProperty("count", out var count) ? count.GetInt64() : 0);
        }
        finally
        {
            if (etcd is not null)
            {
                if (!etcd.HasExited)
                {
                    etcd.Kill(entireProcessTree: true);
                    await etcd.WaitForExitAsync(CancellationToken.None);
                }

                etcd.Dispose();
            }

            Directory.Delete(work, recursive: true);
        }
    }

    private static Process Start(string fileName, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["ETCDCTL_API"] = "3";
        try
        {
            var process = Process.Start(info)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return process;
        }
        catch (Win32Exception ex)
        {
            throw new DrillFailedException($"cannot run '{fileName}': {ex.Message} (set Verify:Etcd / Verify:Etcdctl)");
        }
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(string fileName, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["ETCDCTL_API"] = "3";
        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (Win32Exception ex)
        {
            throw new DrillFailedException($"cannot run '{fileName}': {ex.Message} (set Verify:Etcdctl)");
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var error = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            return (process.ExitCode, await output, await error);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string LastLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "no output";
}

internal sealed class DrillFailedException(string message) : Exception(message);
