using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace ClusterBackup.Scheduling;

/// <summary>
/// <c>cluster-backup run</c>: the generic host with one Quartz job per cluster, the metrics
/// listener and start-up catch-up; a systemd notify service when systemd starts it.
/// </summary>
internal static class Daemon
{
    /// <summary>How long stopping may take: in-flight runs are cancelled and clean up within it.</summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(60);

    public static async Task RunAsync(AgentSettings settings, CancellationToken cancellationToken)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSystemd();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout);
        var health = new AgentHealth();
        builder.Logging.ClearProviders().AddSerilog(CreateLogger(settings.LogLevels, health), dispose: true);
        builder.Services.AddAgent(settings);
        builder.Services.AddSingleton<RunGate>();
        builder.Services.AddSingleton(health);
        builder.Services.AddQuartz(quartz =>
        {
            quartz.UseDefaultThreadPool(pool => pool.MaxConcurrency = settings.Scheduler.MaxConcurrentRuns);
            if (settings.Scheduler.Clustered)
            {
                UseSharedStore(quartz, settings.Scheduler);
            }

            foreach (var cluster in settings.Clusters)
            {
                AddJob<ClusterBackupJob>(quartz, ClusterBackupJob.KeyFor(cluster.Name), cluster, cluster.Schedule!, "schedule", settings.Scheduler.Clustered);
                if (cluster.VerifySchedule is { } verify)
                {
                    AddJob<ClusterVerifyJob>(quartz, ClusterVerifyJob.KeyFor(cluster.Name), cluster, verify, "verify", recover: false);
                }
            }
        });
        builder.Services.AddSingleton<SchedulerStarter>();
        builder.Services.AddHostedService(services => services.GetRequiredService<SchedulerStarter>());
        builder.Services.AddHostedService<CatchUpService>();
        builder.Services.AddHostedService<SchedulerMonitor>();
        builder.Services.AddHostedService<MetricsListener>();

        using var host = builder.Build();
        await host.StartAsync(cancellationToken);
        await host.WaitForShutdownAsync(cancellationToken); // not RunAsync: that disposes the services asked below
        if (StoppedBy(host.Services) is { } reason)
        {
            // The host stops on a service's failure as it does on SIGTERM; a clean exit would tell
            // systemd (Restart=on-failure) that nothing needs restarting.
            throw new DaemonFailedException(reason);
        }
    }

    /// <summary>
    /// Why the agent stopped by itself, if it did: the scheduler that did not start, or a service
    /// that failed (the metrics listener without its port, the start-up catch-up). Null after a stop
    /// that was asked for.
    /// </summary>
    internal static string? StoppedBy(IServiceProvider services)
    {
        var failures = new List<(Exception Error, string Reason)>();
        foreach (var service in services.GetServices<IHostedService>())
        {
            (Exception Error, string Reason)? failure = service switch
            {
                SchedulerStarter { Started: { IsFaulted: true } started } when started.Exception!.InnerException is { } error =>
                    (error, $"the scheduler did not start on its PostgreSQL store: {SchedulerMonitor.Innermost(error).Message}"),
                BackgroundService { ExecuteTask: { IsFaulted: true } task } when task.Exception!.InnerException is { } error =>
                    (error, error.Message),
                _ => null,
            };
            // A service that waited on the scheduler fails with the scheduler's own error: say it once.
            if (failure is { } found && !failures.Exists(f => ReferenceEquals(f.Error, found.Error)))
            {
                failures.Add(found);
            }
        }

        return failures.Count == 0 ? null : string.Join("; ", failures.Select(f => f.Reason));
    }

    /// <summary>How long an idle agent waits before it looks for due firings in the shared store again.</summary>
    public static readonly TimeSpan IdleWaitTime = TimeSpan.FromSeconds(2);

    /// <summary>How often each agent records in the shared store that it is alive.</summary>
    public static readonly TimeSpan CheckinInterval = TimeSpan.FromSeconds(5);

    /// <summary>How long past a missed check-in the others wait before taking over its runs.</summary>
    public static readonly TimeSpan CheckinMisfireThreshold = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Quartz's clustered ADO.NET store on PostgreSQL: every agent with the same database shares one
    /// schedule, each firing runs on one agent, and the runs of an agent that stops checking in are
    /// recovered by another. The tables are created at start when missing (agents racing to create
    /// them are safe: the loser finds the winner's).
    /// </summary>
    private static void UseSharedStore(IQuartzBuilder quartz, SchedulerOptions options)
    {
        quartz.ConfigureScheduler(scheduler =>
        {
            scheduler.InstanceName = "cluster-backup";
            scheduler.InstanceId = options.Instance;
            // Firings another agent adds (a catch-up, a recovery) are seen within IdleWaitTime;
            // a free agent takes up to a run slot's worth of due firings at once.
            scheduler.IdleWaitTime = IdleWaitTime;
            scheduler.MaxBatchSize = options.MaxConcurrentRuns;
        });
        quartz.UsePersistentStore(store =>
        {
            store.UsePostgres(Npgsql.NpgsqlFactory.Instance, SchedulerDatabase.ConnectionStringFor(options));
            store.UseClustering(clustering =>
            {
                clustering.CheckinInterval = CheckinInterval;
                clustering.CheckinMisfireThreshold = CheckinMisfireThreshold;
            });
            store.ProvisionSchema();
            // A catch-up firing that waited past the misfire threshold for a free run slot (a fleet
            // all due at once) fires at the handler's next pass: make that seconds, not a minute.
            store.ConfigureStore(ado => ado.MisfireHandlerFrequency = TimeSpan.FromSeconds(5));
        });
    }

    /// <summary>
    /// One job per cluster and kind, and its cron trigger. A firing that finds its cluster busy (the
    /// run gate here, the run lock anywhere) is skipped, not queued, so concurrent execution is not
    /// disallowed in Quartz: that would hold the firing back and run it late.
    /// </summary>
    private static void AddJob<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors | DynamicallyAccessedMemberTypes.PublicProperties | DynamicallyAccessedMemberTypes.Interfaces)] TJob>(IQuartzBuilder quartz, JobKey key, ClusterSettings cluster, CronSchedule schedule, string suffix, bool recover)
        where TJob : IJob
    {
        quartz.AddJob<TJob>(job => job
            .WithIdentity(key)
            .UsingJobData(ClusterBackupJob.ClusterKey, cluster.Name)
            .StoreDurably()
            .RequestRecovery(recover));
        quartz.AddTrigger(trigger => trigger
            .ForJob(key)
            .WithIdentity($"{cluster.Name}-{suffix}", ClusterBackupJob.Group)
            .WithSchedule(CronScheduleBuilder.Create(schedule.Expression)
                .InTimeZone(cluster.TimeZone)
                .WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)));
    }

    /// <summary>
    /// Levels from the configuration (<see cref="LogLevels"/>); the sink is set here:
    /// readable text on a terminal, compact JSON otherwise (journald), on standard error. While the
    /// shared store is unreachable Quartz's retries are not logged: the agent says so once.
    /// </summary>
    private static Serilog.Core.Logger CreateLogger(LogLevels levels, AgentHealth health)
    {
        var logger = new LoggerConfiguration().MinimumLevel.Is(levels.Default);
        foreach (var (source, level) in levels.Overrides)
        {
            logger.MinimumLevel.Override(source, level);
        }

        logger = logger
            .Filter.ByExcluding(e => health.StoreProblem is not null
                && e.Properties.TryGetValue("SourceContext", out var source)
                && source.ToString().StartsWith("\"Quartz", StringComparison.Ordinal))
            .Enrich.FromLogContext();
        return Console.IsErrorRedirected
            ? logger.WriteTo.Console(new RenderedCompactJsonFormatter(), standardErrorFromLevel: LogEventLevel.Verbose).CreateLogger()
            : logger.WriteTo.Console(
                outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}",
                formatProvider: CultureInfo.InvariantCulture,
                standardErrorFromLevel: LogEventLevel.Verbose).CreateLogger();
    }
}
