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
/// </summary>
internal sealed partial class ClusterBackupJob(
    BackupCycle cycle, RunGate gate, IReadOnlyList<ClusterSettings> clusters, IHostApplicationLifetime lifetime, ILogger<ClusterBackupJob> logger) : IJob
{
    public const string ClusterKey = "cluster";

    /// <summary>Job data of a catch-up firing (<see cref="CatchUpService"/>).</summary>
    public const string CatchUpKey = "catchUp";

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
            var trigger = context.Recovering ? CycleTrigger.Recovery
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
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            LogCancelled(name);
        }
    }

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
