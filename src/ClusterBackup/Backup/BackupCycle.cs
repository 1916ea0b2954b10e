using System.Diagnostics;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using ClusterBackup.Retention;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Backup;

/// <summary>What one cycle did: the committed set or the failure, and what retention removed.</summary>
internal sealed record CycleOutcome(SetManifest? Manifest, BackupFailedException? Failure, PruneResult? Pruned, string? PruneError);

/// <summary>
/// A backup of one cluster followed by its retention, with the metrics of both: what the daemon's
/// schedule and the CLI's <c>backup</c> both run.
/// </summary>
internal sealed partial class BackupCycle(BackupRun run, PruneService pruner, AgentMetrics metrics, TimeProvider time, ILogger<BackupCycle> logger)
{
    /// <summary>
    /// Runs the cycle: every failure, at any step, is counted and logged once and returned; throws
    /// only <see cref="OperationCanceledException"/> when cancelled (nothing is committed then).
    /// </summary>
    public async Task<CycleOutcome> RunAsync(ClusterSettings cluster, CancellationToken cancellationToken = default)
    {
        var stopwatch = Stopwatch.StartNew();
        metrics.RecordAttempt(cluster.Name, time.GetUtcNow());
        SetManifest manifest;
        try
        {
            manifest = await run.RunAsync(cluster, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // A stop is not a failure: nothing is counted, nothing was committed; the caller says so once.
            throw;
        }
        catch (Exception ex)
        {
            var failure = ex as BackupFailedException
                ?? new BackupFailedException(cluster.Name, null, BackupStep.Backup, $"unexpected {ex.GetType().Name}: {ex.Message}", ex);
            metrics.RecordFailure(cluster.Name, stopwatch.Elapsed);
            LogFailed(cluster.Name, failure.Step.Describe(), failure.Node is { } node ? $"node {node}: {failure.Reason}" : failure.Reason);
            return new CycleOutcome(null, failure, null, null);
        }

        metrics.RecordSuccess(cluster.Name, manifest, stopwatch.Elapsed);
        try
        {
            var plan = await pruner.PlanAsync(cluster, cancellationToken);
            var pruned = await pruner.ApplyAsync(plan, cancellationToken);
            metrics.RecordPruned(cluster.Name, pruned.RemovedSets, plan.Sets.Count(s => s.Set.Complete) - pruned.RemovedSets, plan.Sets.Count(s => s.Set.State == SetState.Damaged));
            return new CycleOutcome(manifest, null, pruned, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The new set is committed; retention is retried after the next backup.
            LogPruneFailed(cluster.Name, ex.Message);
            return new CycleOutcome(manifest, null, null, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Backup of {Cluster} failed at {Step}: {Reason}")]
    private partial void LogFailed(string cluster, string step, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retention of {Cluster} failed after a committed backup: {Reason}")]
    private partial void LogPruneFailed(string cluster, string reason);
}
