namespace ClusterBackup.Rig;

/// <summary>
/// What the kubelet does with etcd's static pod, and nothing more: while <c>etcd.yaml</c> is in the
/// manifests dir, etcd runs with the flags its <c>command:</c> list gives; when the file goes, etcd
/// is stopped; when etcd exits on its own, it is started again a second later (a crash loop).
/// </summary>
public sealed class StandInKubelet : IAsyncDisposable
{
    private readonly string _manifest;
    private readonly string _logs;
    private readonly string _name;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private ExternalProcess? _etcd;

    public StandInKubelet(string name, string manifestsDirectory, string logs)
    {
        _name = name;
        _manifest = Path.Combine(manifestsDirectory, "etcd.yaml");
        _logs = logs;
        _loop = Task.Run(LoopAsync);
    }

    public string Log => _etcd?.Tail() ?? "(etcd not started)";

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var present = File.Exists(_manifest);
                if (present && (_etcd is null || _etcd.HasExited))
                {
                    if (_etcd is not null)
                    {
                        await _etcd.DisposeAsync();
                        await Task.Delay(1000, _stop.Token); // back-off of a crash loop
                    }

                    _etcd = ExternalProcess.Start($"etcd-{_name}", "etcd", Flags(await File.ReadAllLinesAsync(_manifest)), _logs);
                }
                else if (!present && _etcd is not null)
                {
                    await _etcd.DisposeAsync();
                    _etcd = null;
                }

                await Task.Delay(200, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (IOException)
            {
                // the manifest moved while being read
            }
        }
    }

    /// <summary>Kills etcd, as a crash would; the loop starts it again.</summary>
    public async Task CrashAsync()
    {
        if (_etcd is not null)
        {
            await _etcd.StopAsync();
        }
    }

    /// <summary>The <c>- --flag=value</c> items of the pod's command list.</summary>
    public static IReadOnlyList<string> Flags(IEnumerable<string> manifest) =>
        manifest.Select(l => l.Trim())
            .Where(l => l.StartsWith("- --", StringComparison.Ordinal))
            .Select(l => l[2..])
            .ToList();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }

        _stop.Dispose();
    }
}
