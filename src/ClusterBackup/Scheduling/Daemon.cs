using System.Globalization;
using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using Microsoft.Extensions.Configuration;
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

    public static async Task RunAsync(IConfiguration configuration, AgentSettings settings, CancellationToken cancellationToken)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSystemd();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout);
        builder.Logging.ClearProviders().AddSerilog(CreateLogger(configuration), dispose: true);
        builder.Services.AddAgent(settings);
        builder.Services.AddSingleton<RunGate>();
        builder.Services.AddSingleton<AgentHealth>();
        builder.Services.AddQuartz(quartz =>
        {
            quartz.UseDefaultThreadPool(pool => pool.MaxConcurrency = Math.Max(4, settings.Clusters.Count * 2));
            foreach (var cluster in settings.Clusters)
            {
                var key = ClusterBackupJob.KeyFor(cluster.Name);
                quartz.AddJob<ClusterBackupJob>(job => job.WithIdentity(key).UsingJobData(ClusterBackupJob.ClusterKey, cluster.Name).StoreDurably());
                quartz.AddTrigger(trigger => trigger
                    .ForJob(key)
                    .WithIdentity($"{cluster.Name}-schedule", "cluster-backup")
                    .WithSchedule(CronScheduleBuilder.Create(cluster.Schedule!.Expression)
                        .InTimeZone(cluster.TimeZone)
                        .WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)));
                if (cluster.VerifySchedule is { } verify)
                {
                    var verifyKey = ClusterVerifyJob.KeyFor(cluster.Name);
                    quartz.AddJob<ClusterVerifyJob>(job => job.WithIdentity(verifyKey).UsingJobData(ClusterBackupJob.ClusterKey, cluster.Name).StoreDurably());
                    quartz.AddTrigger(trigger => trigger
                        .ForJob(verifyKey)
                        .WithIdentity($"{cluster.Name}-verify", "cluster-backup")
                        .WithSchedule(CronScheduleBuilder.Create(verify.Expression)
                            .InTimeZone(cluster.TimeZone)
                            .WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)));
                }
            }
        });
        builder.Services.AddQuartzHostedService(options => options.WaitForJobsToComplete = true);
        builder.Services.AddHostedService<CatchUpService>();
        builder.Services.AddHostedService<MetricsListener>();

        using var host = builder.Build();
        await host.RunAsync(cancellationToken);
    }

    /// <summary>
    /// Levels from the <c>Serilog</c> section (MinimumLevel and its Override); the sink is set here:
    /// readable text on a terminal, compact JSON otherwise (journald), on standard error.
    /// </summary>
    private static Serilog.Core.Logger CreateLogger(IConfiguration configuration)
    {
        var logger = new LoggerConfiguration()
            .MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Quartz", LogEventLevel.Warning)
            .ReadFrom.Configuration(configuration)
            .Enrich.FromLogContext();
        return Console.IsErrorRedirected
            ? logger.WriteTo.Console(new RenderedCompactJsonFormatter(), standardErrorFromLevel: LogEventLevel.Verbose).CreateLogger()
            : logger.WriteTo.Console(
                outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}",
                formatProvider: CultureInfo.InvariantCulture,
                standardErrorFromLevel: LogEventLevel.Verbose).CreateLogger();
    }
}
