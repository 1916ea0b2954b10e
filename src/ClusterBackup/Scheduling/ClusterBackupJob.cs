using System.Globalization;
using ClusterBackup.Backup;
using ClusterBackup.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace ClusterBackup.Scheduling;

/// <summary>
/// The scheduled backup of one cluster (its name in the job data). Skips when the cluster's previous
/// run is still going, here or anywhere else (the cluster's run lock); stops cleanly (nothing
/// committed, uploads aborted) when the daemon stops. A firing recovered from an agent that died
/// first removes the partial set that run left; a catch-up firing does nothing if another run caught up.
/// A failed run is tried again on the cluster's <see cref="RetryPolicy"/>, through a one-off trigger
/// of this job (kept in the shared store, so any agent may fire it), which does nothing if another
/// run caught up meanwhile.
/// </summary>
internal sealed partial class ClusterBackupJob(
    BackupCycle cycle, RunGate gate, IReadOnlyList<ClusterSettings> clusters, IHostApplicationLifetime lifetime, TimeProvider time,
    ILogger<ClusterBackupJob> logger) : IJob
{
    public const string ClusterKey = "cluster";

    /// <summary>Job data of a catch-up firing (<see cref="CatchUpService"/>).</summary>
    public const string CatchUpKey = "catchUp";

    /// <summary>Job data of a retry's firing: which retry it is, from 1.</summary>
    public const string RetryKey = "retry";

    public const string Group = "cluster-backup";

    public static JobKey KeyFor(string cluster) => new(cluster, Group);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var name = context.MergedJobDataMap.GetString(ClusterKey)!;
        if (clusters.FirstOrDefault(c => c.Name == name) is not { } cluster)
        {
            // A shared store's job of a cluster since removed from the configuration, fired before the start removed it.
            LogNotConfigured(name);
            return;
        }

        using var entered = gate.TryEnter(name);
        if (entered is null)
        {
            LogSkipped(name);
            return;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        try
        {
            var attempt = RetryOf(context);
            var trigger = context.Recovering ? CycleTrigger.Recovery
                : attempt > 0 ? CycleTrigger.Retry
                : context.MergedJobDataMap.ContainsKey(CatchUpKey) ? CycleTrigger.CatchUp
                : CycleTrigger.Schedule;
            var outcome = await cycle.RunAsync(cluster, trigger, context.ScheduledFireTimeUtc, stop.Token);
            if (outcome.Skipped is { } why)
            {
                LogSkippedBecause(name, why);
            }
            else if (outcome.Manifest is { } manifest)
            {
                LogDone(name, manifest.SetId, outcome.Pruned?.RemovedSets ?? 0);
            }
            else if (outcome.Failure is not null)
            {
                await ScheduleRetryAsync(context, cluster, attempt, stop.Token);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            LogCancelled(name);
        }
    }

    /// <summary>Which retry a firing is: 0 for any other firing.</summary>
    private static int RetryOf(IJobExecutionContext context) =>
        context.MergedJobDataMap.TryGetString(RetryKey, out var text)
        && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var attempt)
            ? attempt
            : 0;

    /// <summary>
    /// Schedules the next retry of a failed run, if the cluster's policy has one before its next
    /// scheduled firing; a retry of the same number still pending (from an earlier failure) is
    /// replaced. A failure to schedule it is logged: the next scheduled firing still comes.
    /// </summary>
    private async Task ScheduleRetryAsync(IJobExecutionContext context, ClusterSettings cluster, int attempt, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var next = cluster.Schedule?.NextAfter(now);
        if (cluster.Retry.NextRetry(attempt, now, next) is not { } at)
        {
            // A first failure whose retry would come after the next firing (a frequent schedule) needs no word more.
            if (attempt > 0)
            {
                LogNoRetry(cluster.Name, attempt, next?.ToString("u", CultureInfo.InvariantCulture) ?? "none");
            }

            return;
        }

        var retry = TriggerBuilder.Create()
            .ForJob(context.JobDetail.Key)
            .WithIdentity($"{cluster.Name}-retry-{attempt + 1}", Group)
            .UsingJobData(RetryKey, (attempt + 1).ToString(CultureInfo.InvariantCulture))
            .StartAt(at)
            .WithSimpleSchedule(schedule => schedule.WithMisfireInstruction(SimpleTriggerMisfireInstruction.FireNow))
            .Build();
        try
        {
            await context.Scheduler.ScheduleJob(retry, ScheduleJobOptions.Replacing, cancellationToken);
            LogRetry(cluster.Name, attempt + 1, cluster.Retry.Attempts, at.ToString("u", CultureInfo.InvariantCulture));
        }
        catch (SchedulerException ex)
        {
            LogRetryNotScheduled(cluster.Name, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backup of {Cluster} will be tried again: retry {Retry} of {Retries} at {At}")]
    private partial void LogRetry(string cluster, int retry, int retries, string at);

    [LoggerMessage(Level = LogLevel.Error, Message = "Backup of {Cluster} failed on retry {Retry}, its last: the next try is its scheduled firing at {Next}")]
    private partial void LogNoRetry(string cluster, int retry, string next);

    [LoggerMessage(Level = LogLevel.Error, Message = "The retry of the failed backup of {Cluster} could not be scheduled: {Reason}; its next scheduled firing still comes")]
    private partial void LogRetryNotScheduled(string cluster, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipping a backup of {Cluster}: the cluster is no longer configured (a job left in the shared schedule)")]
    private partial void LogNotConfigured(string cluster);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipping the scheduled backup of {Cluster}: its previous run is still going")]
    private partial void LogSkipped(string cluster);

    [LoggerMessage(Level = LogLevel.Information, Message = "Skipping the scheduled backup of {Cluster}: {Reason}")]
    private partial void LogSkippedBecause(string cluster, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Scheduled backup of {Cluster} committed set {SetId}; retention removed {Removed} sets")]
    private partial void LogDone(string cluster, string setId, int removed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backup of {Cluster} interrupted by shutdown: uploads aborted, nothing committed")]
    private partial void LogCancelled(string cluster);
}
