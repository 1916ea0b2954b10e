using ClusterBackup.Backup;
using ClusterBackup.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace ClusterBackup.Scheduling;

/// <summary>
/// The scheduled backup of one cluster (its name in the job data). Skips when the cluster's previous
/// run is still going; stops cleanly (nothing committed, uploads aborted) when the daemon stops.
/// </summary>
internal sealed partial class ClusterBackupJob(
    BackupCycle cycle, RunGate gate, IReadOnlyList<ClusterSettings> clusters, IHostApplicationLifetime lifetime, ILogger<ClusterBackupJob> logger) : IJob
{
    public const string ClusterKey = "cluster";

    public static JobKey KeyFor(string cluster) => new(cluster, "cluster-backup");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var name = context.MergedJobDataMap.GetString(ClusterKey)!;
        var cluster = clusters.First(c => c.Name == name);
        using var entered = gate.TryEnter(name);
        if (entered is null)
        {
            LogSkipped(name);
            return;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        try
        {
            var outcome = await cycle.RunAsync(cluster, stop.Token);
            if (outcome.Manifest is { } manifest)
            {
                LogDone(name, manifest.SetId, outcome.Pruned?.RemovedSets ?? 0);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            LogCancelled(name);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipping the scheduled backup of {Cluster}: its previous run is still going")]
    private partial void LogSkipped(string cluster);

    [LoggerMessage(Level = LogLevel.Information, Message = "Scheduled backup of {Cluster} committed set {SetId}; retention removed {Removed} sets")]
    private partial void LogDone(string cluster, string setId, int removed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backup of {Cluster} interrupted by shutdown: uploads aborted, nothing committed")]
    private partial void LogCancelled(string cluster);
}
