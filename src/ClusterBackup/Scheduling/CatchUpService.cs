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
    IReadOnlyList<ClusterSettings> clusters, MetricsSeeder seeder, AgentMetrics metrics, AgentHealth health, SchedulerStarter starter,
    TimeProvider time, IHostApplicationLifetime lifetime, ILogger<CatchUpService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        metrics.Initialize(clusters, time.GetUtcNow());
        lifetime.ApplicationStopping.Register(health.MarkStopping);
        // Metrics first: they are served even while a shared store keeps the scheduler from starting.
        var newestSets = new Dictionary<string, DateTimeOffset?>(StringComparer.Ordinal);
        foreach (var cluster in clusters)
        {
            newestSets[cluster.Name] = (await seeder.SeedAsync(cluster, stoppingToken))?.StartedAt;
        }

        var scheduler = await starter.Started.WaitAsync(stoppingToken);
        await RemoveUnconfiguredAsync(scheduler, stoppingToken);
        foreach (var cluster in clusters)
        {
            var newest = newestSets[cluster.Name];
            if (cluster.MissedSchedule(newest, time.GetUtcNow()))
            {
                // Agents sharing a store may all see the miss: the firing checks again under the run lock.
                LogCatchUp(cluster.Name, newest is { } started ? started.ToString("u", System.Globalization.CultureInfo.InvariantCulture) : "none");
                await scheduler.TriggerJob(ClusterBackupJob.KeyFor(cluster.Name), new JobDataMap { [ClusterBackupJob.CatchUpKey] = "true" }, stoppingToken);
            }

            // Verification results are not stored: verify once at start-up so the gauge is not 0.
            if (cluster.VerifySchedule is not null)
            {
                await scheduler.TriggerJob(ClusterVerifyJob.KeyFor(cluster.Name), stoppingToken);
            }
        }

        health.MarkReady();
    }

    /// <summary>
    /// A shared store keeps the jobs of clusters since removed from the configuration: the declared
    /// ones were just stored (replacing what was there), so whatever else is in the agent's groups goes.
    /// </summary>
    private async Task RemoveUnconfiguredAsync(IScheduler scheduler, CancellationToken cancellationToken)
    {
        var declared = clusters.Select(c => ClusterBackupJob.KeyFor(c.Name))
            .Concat(clusters.Where(c => c.VerifySchedule is not null).Select(c => ClusterVerifyJob.KeyFor(c.Name)))
            .ToHashSet();
        foreach (var group in new[] { ClusterBackupJob.Group, ClusterVerifyJob.Group })
        {
            foreach (var job in await scheduler.GetJobKeys(GroupMatcher<JobKey>.GroupEquals(group), cancellationToken))
            {
                if (!declared.Contains(job))
                {
                    await RemoveJobAsync(scheduler, job, cancellationToken);
                }
            }
        }
    }

    /// <summary>
    /// Removes a job, trying again while the store reports a transient failure (agents starting
    /// together, or a firing of that very job, can deadlock its tables): a job left behind fires to
    /// no effect and goes at the next start, but a daemon stopped by it backs nothing up.
    /// </summary>
    private async Task RemoveJobAsync(IScheduler scheduler, JobKey job, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await scheduler.DeleteJob(job, cancellationToken);
                LogRemovedJob(job.ToString());
                return;
            }
            catch (SchedulerException ex) when (!cancellationToken.IsCancellationRequested)
            {
                if (attempt == 3)
                {
                    LogJobNotRemoved(job.ToString(), ex.Message);
                    return;
                }

                await Task.Delay(TimeSpan.FromSeconds(1), time, cancellationToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove {Job} from the shared schedule, its cluster or schedule no longer configured: {Reason}; its firings do nothing, and the next start removes it")]
    private partial void LogJobNotRemoved(string job, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed {Job} from the shared schedule: its cluster or schedule is no longer configured")]
    private partial void LogRemovedJob(string job);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Cluster} missed a scheduled backup (newest set started: {Started}): backing up now")]
    private partial void LogCatchUp(string cluster, string started);
}
