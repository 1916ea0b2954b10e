using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;
using ClusterBackup.Configuration;

namespace ClusterBackup.Verify;

/// <summary>What a drill found in the restored snapshot: its revision and keys, and how its Secrets are stored.</summary>
internal sealed record DrillResult(long Revision, long KeyCount, IReadOnlyDictionary<AtRestKey, int> EncryptedSecrets, int PlainSecrets);

/// <summary>
/// A restore drill on the workstation: <c>etcdctl snapshot restore</c> into a temp dir, a throwaway
/// etcd on loopback free ports, its revision and key count read back, then everything removed.
/// </summary>
internal sealed class EtcdDrill(VerifyOptions options, TimeProvider time, Func<int>? nextPort = null)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly Func<int> _nextPort = nextPort ?? LoopbackPorts.Next;

    /// <summary>Throws <see cref="DrillFailedException"/> with what went wrong.</summary>
    public async Task<DrillResult> RunAsync(string snapshotFile, CancellationToken cancellationToken = default)
    {
        // Another program may take a picked port before etcd binds it; that costs a retry, not a failed drill.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await RunOnceAsync(snapshotFile, cancellationToken);
            }
            catch (PortTakenException) when (attempt < 3)
            {
            }
            catch (PortTakenException ex)
            {
                throw new DrillFailedException($"the restored etcd could not bind its loopback ports: {ex.Message}");
            }
        }
    }

    private async Task<DrillResult> RunOnceAsync(string snapshotFile, CancellationToken cancellationToken)
    {
        var work = Directory.CreateTempSubdirectory("cluster-backup-drill-").FullName;
        var peer = _nextPort();
        var client = _nextPort();
        var data = Path.Combine(work, "data");
        EtcdProcess? etcd = null;
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

            etcd = EtcdProcess.Start(options.Etcd,
                ["--name", "drill", "--data-dir", data,
                 "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
                 "--listen-peer-urls", $"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}",
                 "--initial-cluster", $"drill=http://127.0.0.1:{peer}", "--log-outputs", "stderr", "--logger", "zap"]);
            var endpoint = $"--endpoints=http://127.0.0.1:{client}";
            var deadline = time.GetUtcNow() + StartTimeout;
            while (true)
            {
                if (etcd.Process.HasExited)
                {
                    await etcd.Process.WaitForExitAsync(CancellationToken.None);
                    var last = etcd.LastErrorLine();
                    if (last.Contains("address already in use", StringComparison.Ordinal))
                    {
                        throw new PortTakenException(last);
                    }

                    throw new DrillFailedException($"the restored etcd exited with {etcd.Process.ExitCode}: {last}");
                }

                var health = await RunAsync(options.Etcdctl, [endpoint, "--command-timeout=2s", "endpoint", "health"], cancellationToken);
                if (health.ExitCode == 0)
                {
                    break;
                }

                if (time.GetUtcNow() > deadline)
                {
                    throw new DrillFailedException($"the restored etcd did not become healthy within {StartTimeout.TotalSeconds:0}s");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(200), time, cancellationToken);
            }

            var range = await RunAsync(options.Etcdctl, [endpoint, "get", string.Empty, "--prefix", "--keys-only", "--limit=1", "-w", "json"], cancellationToken);
            if (range.ExitCode != 0)
            {
                throw new DrillFailedException($"reading the restored etcd failed: {LastLine(range.Error)}");
            }

            using var json = JsonDocument.Parse(range.Output);
            var (encrypted, plain) = await ReadSecretsAsync(endpoint, cancellationToken);
            return new DrillResult(
                json.RootElement.GetProperty("header").GetProperty("revision").GetInt64(),
                json.RootElement.TryGetProperty("count", out var count) ? count.GetInt64() : 0,
                encrypted,
                plain);
        }
        finally
        {
            if (etcd is not null)
            {
                await etcd.DisposeAsync();
            }

            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>How each Secret is stored (the prefix of its value), a page of them at a time.</summary>
    private async Task<(Dictionary<AtRestKey, int> Encrypted, int Plain)> ReadSecretsAsync(string endpoint, CancellationToken cancellationToken)
    {
        const int Page = 500;
        var encrypted = new Dictionary<AtRestKey, int>();
        var plain = 0;
        var start = SecretsAtRest.Prefix;
        var skipFirst = false;
        while (true)
        {
            var page = await RunAsync(options.Etcdctl, [endpoint, "get", start, SecretsAtRest.RangeEnd, $"--limit={Page + 1}", "-w", "json"], cancellationToken);
            if (page.ExitCode != 0)
            {
                throw new DrillFailedException($"reading the restored etcd's Secrets failed: {LastLine(page.Error)}");
            }

            using var json = JsonDocument.Parse(page.Output);
            var kvs = json.RootElement.TryGetProperty("kvs", out var found) ? found.EnumerateArray().ToList() : [];
            foreach (var kv in kvs.Skip(skipFirst ? 1 : 0))
            {
                var value = kv.TryGetProperty("value", out var v) ? v.GetBytesFromBase64() : [];
                if (SecretsAtRest.KeyOf(value) is { } key)
                {
                    encrypted[key] = encrypted.GetValueOrDefault(key) + 1;
                }
                else
                {
                    plain++;
                }
            }

            if (!(json.RootElement.TryGetProperty("more", out var more) && more.GetBoolean()) || kvs.Count == 0)
            {
                return (encrypted, plain);
            }

            // The next page starts at the last key read, which it then skips.
            start = System.Text.Encoding.UTF8.GetString(kvs[^1].GetProperty("key").GetBytesFromBase64());
            skipFirst = true;
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

    private static string LastLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "no output";
}

internal sealed class DrillFailedException(string message) : Exception(message);

/// <summary>The drill's etcd, its stderr's last lines kept for the failure message.</summary>
internal sealed class EtcdProcess : IAsyncDisposable
{
    private const int KeptLines = 20;
    private readonly Queue<string> errorLines = new();

    private EtcdProcess(Process process) => Process = process;

    public Process Process { get; }

    public static EtcdProcess Start(string fileName, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (Win32Exception ex)
        {
            throw new DrillFailedException($"cannot run '{fileName}': {ex.Message} (set Verify:Etcd)");
        }

        var etcd = new EtcdProcess(process);
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => etcd.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return etcd;
    }

    /// <summary>The newest stderr line that says something, such as etcd's fatal error.</summary>
    public string LastErrorLine()
    {
        lock (errorLines)
        {
            return errorLines.LastOrDefault(line => line.Contains("\"error\"", StringComparison.Ordinal))
                ?? errorLines.LastOrDefault()
                ?? "no output";
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
        }

        await Process.WaitForExitAsync(CancellationToken.None);
        Process.Dispose();
    }

    private void Keep(string? line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            return;
        }

        lock (errorLines)
        {
            errorLines.Enqueue(line);
            while (errorLines.Count > KeptLines)
            {
                errorLines.Dequeue();
            }
        }
    }
}

/// <summary>etcd could not bind a port picked for it.</summary>
internal sealed class PortTakenException(string message) : Exception(message);
