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
    /// <summary>Seeds one cluster; returns its newest complete set, or null. A storage failure is logged and leaves the gauges at zero.</summary>
    public async Task<SetManifest?> SeedAsync(ClusterSettings cluster, CancellationToken cancellationToken = default)
    {
        try
        {
            var scan = await catalog.ScanAsync(cluster.Name, cancellationToken);
            var complete = scan.Where(s => s.Complete).ToList();
            var newest = complete.Count == 0 ? null : complete[^1].Manifest;
            metrics.Seed(cluster.Name, complete.Count, scan.Count(s => s.State == SetState.Damaged), newest);
            LogSeeded(cluster.Name, complete.Count, newest?.SetId ?? "none");
            return newest;
        }
        catch (StorageException ex)
        {
            LogSeedFailed(cluster.Name, ex.Message);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Cluster}: {Sets} complete sets in storage, newest {SetId}")]
    private partial void LogSeeded(string cluster, int sets, string setId);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Cluster}: cannot read storage at start-up, metrics start at zero: {Reason}")]
    private partial void LogSeedFailed(string cluster, string reason);
}
