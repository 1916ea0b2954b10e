using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Metrics;

/// <summary>
/// At start-up, sets each cluster's gauges from storage (newest complete set, number of sets), so a
/// restart never shows stale backups as fresh, nor fresh ones as never taken.
/// </summary>
internal sealed partial class MetricsSeeder(BackupCatalog catalog, AgentMetrics metrics, ILogger<MetricsSeeder> logger)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _failing = new(StringComparer.Ordinal);

    /// <summary>Seeds one cluster; returns its newest complete set, or null. A storage failure is logged and leaves the gauges at zero.</summary>
    /// <param name="refresh">A periodic refresh: logged at debug level, a failure only once until it succeeds again.</param>
    public async Task<SetManifest?> SeedAsync(ClusterSettings cluster, CancellationToken cancellationToken = default, bool refresh = false)
    {
        try
        {
            var scan = await catalog.ScanAsync(cluster.Name, cancellationToken);
            var complete = scan.Where(s => s.Complete).ToList();
            var newest = complete.Count == 0 ? null : complete[^1].Manifest;
            metrics.Seed(cluster.Name, complete.Count, scan.Count(s => s.State == SetState.Damaged), newest);
            if (refresh)
            {
                _failing.TryRemove(cluster.Name, out _);
                LogRefreshed(cluster.Name, complete.Count, newest?.SetId ?? "none");
            }
            else
            {
                LogSeeded(cluster.Name, complete.Count, newest?.SetId ?? "none");
            }

            return newest;
        }
        catch (StorageException ex)
        {
            if (!refresh)
            {
                LogSeedFailed(cluster.Name, ex.Message);
            }
            else if (_failing.TryAdd(cluster.Name, true))
            {
                LogRefreshFailed(cluster.Name, ex.Message);
            }

            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Cluster}: {Sets} complete sets in storage, newest {SetId}")]
    private partial void LogSeeded(string cluster, int sets, string setId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Cluster}: refreshed from storage: {Sets} complete sets, newest {SetId}")]
    private partial void LogRefreshed(string cluster, int sets, string setId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: cannot refresh the metrics from storage, they keep their last values: {Reason}")]
    private partial void LogRefreshFailed(string cluster, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Cluster}: cannot read storage at start-up, metrics start at zero: {Reason}")]
    private partial void LogSeedFailed(string cluster, string reason);
}
