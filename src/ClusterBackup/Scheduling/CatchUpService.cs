using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace ClusterBackup.Scheduling;

/// <summary>
/// Once the scheduler runs: seeds every cluster's metrics from storage, and backs up at once each
/// cluster whose newest complete set missed a scheduled time (the daemon was down), through the
/// same job, so the one-run-per-cluster rule holds. Clusters with a VerifySchedule are verified
/// once at start-up too.
/// </summary>
internal sealed partial class CatchUpService(
    IReadOnlyList<ClusterSettings> clusters, MetricsSeeder seeder, AgentMetrics metrics, AgentHealth health, ISchedulerFactory schedulers,
    TimeProvider time, IHostApplicationLifetime lifetime, ILogger<CatchUpService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        metrics.Initialize(clusters, time.GetUtcNow());
        lifetime.ApplicationStopping.Register(health.MarkStopping);
        var scheduler = await schedulers.GetScheduler(stoppingToken);
        foreach (var cluster in clusters)
        {
            var newest = await seeder.SeedAsync(cluster, stoppingToken);
            var now = time.GetUtcNow();
            var due = newest is null || (cluster.Schedule?.NextAfter(newest.StartedAt) is { } next && next <= now);
            if (due)
            {
                LogCatchUp(cluster.Name, newest?.SetId ?? "none");
                await scheduler.TriggerJob(ClusterBackupJob.KeyFor(cluster.Name), stoppingToken);
            }

            // Verification results are not stored: verify once at start-up so the gauge is not 0.
            if (cluster.VerifySchedule is not null)
            {
                await scheduler.TriggerJob(ClusterVerifyJob.KeyFor(cluster.Name), stoppingToken);
            }
        }

        health.MarkReady();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Cluster} missed a scheduled backup (newest set: {SetId}): backing up now")]
    private partial void LogCatchUp(string cluster, string setId);
}
