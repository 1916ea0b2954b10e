using System.Collections.Concurrent;

namespace ClusterBackup.Scheduling;

/// <summary>At most one run per cluster (backup or verification): a backup trigger that finds its cluster busy is skipped, never queued.</summary>
internal sealed class RunGate
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new(StringComparer.Ordinal);

    /// <summary>Enters the cluster's gate if it is free; dispose the result to leave. Null when a run is in progress.</summary>
    public IDisposable? TryEnter(string cluster)
    {
        var gate = _gates.GetOrAdd(cluster, _ => new SemaphoreSlim(1, 1));
        return gate.Wait(0) ? new Release(gate) : null;
    }

    /// <summary>Waits until the cluster's gate is free (verification queues behind a backup instead of being skipped).</summary>
    public async Task<IDisposable> EnterAsync(string cluster, CancellationToken cancellationToken)
    {
        var gate = _gates.GetOrAdd(cluster, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        return new Release(gate);
    }

    private sealed class Release(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release();
            }
        }
    }
}
