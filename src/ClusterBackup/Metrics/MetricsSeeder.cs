using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Signing;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Metrics;

/// <summary>
/// At start-up, sets each cluster's gauges from storage (newest complete set, number of sets), so a
/// restart never shows stale backups as fresh, nor fresh ones as never taken. The newest set is the
/// newest one a trusted key signed (as <c>verify</c> and <c>restore</c> would read it): a set forged
/// in storage neither makes a cluster look backed up nor replaces its certificates' expiry.
/// </summary>
internal sealed partial class MetricsSeeder(BackupCatalog catalog, AgentMetrics metrics, SigningSettings signing, ILogger<MetricsSeeder> logger)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _failing = new(StringComparer.Ordinal);

    /// <summary>
    /// By cluster, the signatures already checked of sets still in storage, by set and manifest bytes
    /// (null: accepted; else what is wrong): each is checked and a refusal logged once, and what
    /// retention removed is forgotten.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Dictionary<(string Set, string Manifest), SignatureProblem?>> _checked =
        new(StringComparer.Ordinal);

    /// <summary>Seeds one cluster; returns its newest complete set, or null. A storage failure is logged and leaves the gauges at zero.</summary>
    /// <param name="refresh">A periodic refresh: logged at debug level, a failure only once until it succeeds again.</param>
    public async Task<SetManifest?> SeedAsync(ClusterSettings cluster, CancellationToken cancellationToken = default, bool refresh = false)
    {
        try
        {
            var scan = await catalog.ScanAsync(cluster.Name, cancellationToken);
            var known = _checked.GetValueOrDefault(cluster.Name) ?? [];
            var signed = await catalog.NewestSignedAsync(
                scan, signing.ReadPolicy(), set => known.TryGetValue(Key(set), out var problem) ? problem is null : null, cancellationToken);
            var stored = scan.Where(s => s.Complete).Select(s => s.Id.ToString()).ToHashSet(StringComparer.Ordinal);
            var checkedNow = known.Where(k => stored.Contains(k.Key.Set)).ToDictionary();
            foreach (var refused in signed.Refused)
            {
                checkedNow[Key(refused.Set)] = refused.Problem;
                LogRefused(cluster.Name, refused.Set.Id.ToString(), refused.Reason);
            }

            if (signed.Newest is { } newestSet)
            {
                checkedNow[Key(newestSet)] = null;
            }

            _checked[cluster.Name] = checkedNow;
            var newest = signed.Newest?.Manifest;
            // Sets newer than the newest signed one whose signature is wrong or untrusted, as retention counts them.
            var newestId = signed.Newest?.Id.ToString() ?? string.Empty;
            var forged = checkedNow.Count(c => c.Value is { } problem && problem != SignatureProblem.NotSigned && string.CompareOrdinal(c.Key.Set, newestId) > 0);
            metrics.Seed(cluster.Name, stored.Count, scan.Count(s => s.State == SetState.Damaged), forged, newest);
            if (refresh)
            {
                _failing.TryRemove(cluster.Name, out _);
                LogRefreshed(cluster.Name, stored.Count, newest?.SetId ?? "none");
            }
            else
            {
                LogSeeded(cluster.Name, stored.Count, newest?.SetId ?? "none");
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

    private static (string Set, string Manifest) Key(CatalogSet set) =>
        (set.Id.ToString(), Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(set.ManifestBytes.Span)));

    [LoggerMessage(Level = LogLevel.Error, Message = "{Cluster}: set {SetId} is refused, its manifest not shown in the metrics: {Reason}")]
    private partial void LogRefused(string cluster, string setId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Cluster}: {Sets} complete sets in storage, newest {SetId}")]
    private partial void LogSeeded(string cluster, int sets, string setId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Cluster}: refreshed from storage: {Sets} complete sets, newest {SetId}")]
    private partial void LogRefreshed(string cluster, int sets, string setId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: cannot refresh the metrics from storage, they keep their last values: {Reason}")]
    private partial void LogRefreshFailed(string cluster, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Cluster}: cannot read storage at start-up, metrics start at zero: {Reason}")]
    private partial void LogSeedFailed(string cluster, string reason);
}
