using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace ClusterBackup.Scheduling;

/// <summary>
/// With a shared store, keeps what the daemon reports true wherever the runs happen: every
/// cluster's gauges are refreshed from storage each minute (another agent may have backed it up),
/// the agents alive in the store are counted, and an unreachable store is reported on /healthz and
/// logged once per outage. With the memory store it does nothing: this agent's runs set the gauges.
/// </summary>
internal sealed partial class SchedulerMonitor(
    IReadOnlyList<ClusterSettings> clusters, SchedulerOptions options, MetricsSeeder seeder, AgentMetrics metrics, AgentHealth health,
    SchedulerStarter starter, TimeProvider time, ILogger<SchedulerMonitor> logger) : BackgroundService
{
    public static readonly TimeSpan StorePeriod = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan RefreshPeriod = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Clustered)
        {
            return;
        }

        var scheduler = await starter.Started.WaitAsync(stoppingToken);
        var nextRefresh = time.GetUtcNow() + RefreshPeriod;
        while (!stoppingToken.IsCancellationRequested)
        {
            await CountInstancesAsync(scheduler, stoppingToken);
            if (time.GetUtcNow() >= nextRefresh)
            {
                foreach (var cluster in clusters)
                {
                    await seeder.SeedAsync(cluster, stoppingToken, refresh: true);
                }

                nextRefresh = time.GetUtcNow() + RefreshPeriod;
            }

            await Task.Delay(StorePeriod, time, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task CountInstancesAsync(IScheduler scheduler, CancellationToken cancellationToken)
    {
        try
        {
            var nodes = await scheduler.QueryClusterNodes(cancellationToken);
            metrics.RecordSchedulerInstances(nodes.Count(n => n.State == ClusterNodeState.Alive));
            if (health.SetStoreProblem(null))
            {
                LogStoreBack();
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            metrics.RecordSchedulerInstances(0);
            var reason = Innermost(ex).Message;
            if (health.SetStoreProblem(reason))
            {
                LogStoreLost(reason);
            }
        }
    }

    public static Exception Innermost(Exception ex) => ex.InnerException is { } inner ? Innermost(inner) : ex;

    [LoggerMessage(Level = LogLevel.Error, Message = "The scheduler's PostgreSQL store is unreachable: this agent runs nothing until it returns, and keeps serving metrics ({Reason})")]
    private partial void LogStoreLost(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "The scheduler's PostgreSQL store is reachable again: scheduling resumes")]
    private partial void LogStoreBack();
}
