using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.DependencyInjection;
using Quartz;

namespace ClusterBackup.Scheduling;

/// <summary>
/// Starts the scheduler, and keeps trying while a shared store cannot be reached: the agent serves
/// /metrics and /healthz meanwhile (which say so) instead of failing to start. Stopping lets the
/// runs in flight finish their clean-up within the shutdown timeout.
/// </summary>
internal sealed partial class SchedulerStarter(
    ISchedulerFactory schedulers, SchedulerOptions options, IServiceProvider services, AgentHealth health, IHostApplicationLifetime lifetime,
    TimeProvider time, ILogger<SchedulerStarter> logger)
    : IHostedService
{
    public static readonly TimeSpan RetryPeriod = TimeSpan.FromSeconds(5);

    private readonly TaskCompletionSource<IScheduler> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _starting;

    /// <summary>The running scheduler, once it runs.</summary>
    public Task<IScheduler> Started => _started.Task;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Clustered)
        {
            var scheduler = await schedulers.GetScheduler(cancellationToken);
            await scheduler.Start(cancellationToken);
            _started.TrySetResult(scheduler);
            return;
        }

        _starting = StartSchedulerAsync(_stopping.Token);
    }

    private async Task StartSchedulerAsync(CancellationToken stoppingToken)
    {
        if (options.Clustered && !await WaitForStoreAsync(stoppingToken))
        {
            _started.TrySetCanceled(stoppingToken);
            return;
        }

        try
        {
            var scheduler = await schedulers.GetScheduler(stoppingToken);
            await scheduler.Start(stoppingToken);
            _started.TrySetResult(scheduler);
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            // Not the store's absence (waited for above), e.g. a schema that cannot be created:
            // the agent stops with an error (Daemon.StoppedBy), and systemd restarts it.
            LogStartFailed(SchedulerMonitor.Innermost(ex).Message);
            _started.TrySetException(ex);
            lifetime.StopApplication();
        }
    }

    /// <summary>
    /// Quartz cannot start without its store: wait until PostgreSQL answers before building the
    /// scheduler, saying so once. False when the agent stops first.
    /// </summary>
    private async Task<bool> WaitForStoreAsync(CancellationToken stoppingToken)
    {
        var database = services.GetRequiredService<SchedulerDatabase>();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await database.OpenAsync(stoppingToken);
                if (health.SetStoreProblem(null))
                {
                    LogStoreBack();
                }

                return true;
            }
            catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException && !stoppingToken.IsCancellationRequested)
            {
                var reason = SchedulerMonitor.Innermost(ex).Message;
                if (health.SetStoreProblem(reason))
                {
                    LogStoreLost(reason);
                }
            }

            await Task.Delay(RetryPeriod, time, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        return false;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_starting is not null)
        {
            await _starting; // never throws: failures stop the application instead
        }

        if (_started.Task.IsCompletedSuccessfully)
        {
            await (await _started.Task).Shutdown(waitForJobsToComplete: true, cancellationToken);
        }

        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The scheduler's PostgreSQL store cannot be reached at start-up: this agent runs nothing until it can, and serves metrics meanwhile ({Reason}); retrying every 5 s")]
    private partial void LogStoreLost(string reason);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The scheduler did not start on its PostgreSQL store: {Reason}")]
    private partial void LogStartFailed(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "The scheduler's PostgreSQL store is reachable: starting the scheduler")]
    private partial void LogStoreBack();
}
