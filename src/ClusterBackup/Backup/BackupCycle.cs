using System.Diagnostics;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using ClusterBackup.Retention;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Backup;

/// <summary>
/// What one cycle did: the committed set or the failure, and what retention removed; or, with
/// <see cref="Skipped"/>, why it did nothing (another run holds the cluster, or it caught up already).
/// </summary>
internal sealed record CycleOutcome(SetManifest? Manifest, BackupFailedException? Failure, PruneResult? Pruned, string? PruneError, string? Skipped = null)
{
    public static CycleOutcome Skip(string why) => new(null, null, null, null, why);
}

/// <summary>Why a cycle runs.</summary>
internal enum CycleTrigger
{
    /// <summary>A <c>backup</c> command.</summary>
    Command,

    /// <summary>The cluster's schedule fired.</summary>
    Schedule,

    /// <summary>The daemon started and found the schedule missed: skipped if another run caught up first.</summary>
    CatchUp,

    /// <summary>A failed run tried again (the cluster's <c>Retry</c>): skipped, as a catch-up, if another run caught up first.</summary>
    Retry,

    /// <summary>The run of an agent that died is run again: the dead run's partial set is removed first.</summary>
    Recovery,
}

/// <summary>
/// A backup of one cluster followed by its retention, with the metrics of both: what the daemon's
/// schedule and the CLI's <c>backup</c> both run.
/// </summary>
internal sealed partial class BackupCycle(
    BackupRun run, IClusterRunLock runLock, BackupCatalog catalog, PruneService pruner, AgentMetrics metrics, TimeProvider time, ILogger<BackupCycle> logger)
{
    /// <summary>
    /// Runs the cycle under the cluster's run lock: every failure, at any step, is counted and logged
    /// once and returned; a cluster another run holds is skipped, not counted. Throws only
    /// <see cref="OperationCanceledException"/> when cancelled (nothing is committed then).
    /// </summary>
    /// <summary>How long a recovered firing waits for a run that holds its cluster.</summary>
    public static readonly TimeSpan RecoveryWait = TimeSpan.FromHours(1);

    /// <summary>A set that started this long before a firing was due still counts as that firing's.</summary>
    public static readonly TimeSpan LateTolerance = TimeSpan.FromSeconds(1);

    /// <param name="due">When the firing was due: for <see cref="CycleTrigger.Recovery"/>, the firing of the agent that stopped.</param>
    public async Task<CycleOutcome> RunAsync(
        ClusterSettings cluster, CycleTrigger trigger = CycleTrigger.Command, DateTimeOffset? due = null, CancellationToken cancellationToken = default)
    {
        RunLockResult taken;
        try
        {
            taken = await runLock.TryAcquireAsync(cluster.Name, cancellationToken);
            // A recovery must not be skipped: it is what removes the dead run's partial set. It waits
            // for a run that took the cluster meanwhile (a catch-up), then finds that run's set.
            var waited = Stopwatch.StartNew();
            while (trigger == CycleTrigger.Recovery && taken is RunLockBusy && waited.Elapsed < RecoveryWait)
            {
                await Task.Delay(TimeSpan.FromSeconds(2), time, cancellationToken);
                taken = await runLock.TryAcquireAsync(cluster.Name, cancellationToken);
            }
        }
        catch (RunLockUnavailableException ex)
        {
            var failure = new BackupFailedException(cluster.Name, null, BackupStep.RunLock, ex.Message, ex);
            metrics.RecordAttempt(cluster.Name, time.GetUtcNow());
            metrics.RecordFailure(cluster.Name, TimeSpan.Zero);
            LogFailed(cluster.Name, failure.Step.Describe(), failure.Reason);
            return new CycleOutcome(null, failure, null, null);
        }

        if (taken is RunLockBusy busy)
        {
            return CycleOutcome.Skip($"another backup of it is in progress, by {busy.Holder}");
        }

        await using var held = ((RunLockHeld)taken).Release;
        if (trigger is CycleTrigger.Recovery)
        {
            await RemoveLeftoversAsync(cluster, cancellationToken);
        }

        if (trigger is not CycleTrigger.Command)
        {
            // A firing can come late (queued behind a run, recovered from an agent that stopped or was
            // cut off from the shared store, several agents catching up at once): a set that started
            // since it was due already did its work.
            SetManifest? newest;
            try
            {
                newest = await catalog.NewestManifestAsync(cluster.Name, cancellationToken);
            }
            catch (StorageException)
            {
                newest = null; // storage is down: the backup itself fails, and is counted, saying so
            }

            if (trigger is CycleTrigger.CatchUp or CycleTrigger.Retry && !cluster.MissedSchedule(newest?.StartedAt, time.GetUtcNow()))
            {
                return CycleOutcome.Skip($"caught up already by another run (newest set {newest!.SetId})");
            }

            if (trigger is not (CycleTrigger.CatchUp or CycleTrigger.Retry) && newest is not null && due is { } dueAt && newest.StartedAt >= dueAt - LateTolerance)
            {
                return CycleOutcome.Skip($"set {newest.SetId} already covers the firing due at {dueAt:u}");
            }
        }

        return await BackUpAsync(cluster, cancellationToken);
    }

    /// <summary>
    /// With the run lock held no other run of the cluster is writing: a set without a manifest, and
    /// an open upload, are what a run that died left. A failure here does not stop the backup.
    /// </summary>
    private async Task RemoveLeftoversAsync(ClusterSettings cluster, CancellationToken cancellationToken)
    {
        try
        {
            var plan = await pruner.PlanLeftoversAsync(cluster, cancellationToken);
            var removed = await pruner.ApplyAsync(plan, cancellationToken);
            LogLeftoversRemoved(cluster.Name, removed.RemovedSets, removed.AbortedUploads);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogLeftoversFailed(cluster.Name, ex.Message);
        }
    }

    private async Task<CycleOutcome> BackUpAsync(ClusterSettings cluster, CancellationToken cancellationToken)
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
            metrics.RecordPruned(
                cluster.Name, pruned.RemovedSets, plan.Sets.Count(s => s.Set.Complete) - pruned.RemovedSets, plan.Sets.Count(s => s.Set.State == SetState.Damaged), plan.RefusedNewer);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Recovering the backup of {Cluster} after its agent stopped: removed {Sets} partial sets and aborted {Uploads} open uploads it left")]
    private partial void LogLeftoversRemoved(string cluster, int sets, int uploads);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recovering the backup of {Cluster}: the partial sets its stopped run left were not removed ({Reason}); retention removes them after the grace period")]
    private partial void LogLeftoversFailed(string cluster, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retention of {Cluster} failed after a committed backup: {Reason}")]
    private partial void LogPruneFailed(string cluster, string reason);
}
