using ClusterBackup.Backup;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using ClusterBackup.Pipeline;
using ClusterBackup.Restore;
using ClusterBackup.Retention;
using ClusterBackup.Scheduling;
using ClusterBackup.Scheduling.RunLocks;
using ClusterBackup.Sources.Etcd;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Storage;
using ClusterBackup.Verify;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ClusterBackup;

/// <summary>The agent's services, from validated settings: what the CLI verbs and the daemon share.</summary>
internal static class AgentServices
{
    public static IServiceCollection AddAgent(this IServiceCollection services, AgentSettings settings)
    {
        services.AddSingleton(settings);
        // Each service takes the slice of the settings it uses.
        services.AddSingleton(settings.Storage);
        services.AddSingleton(settings.Metrics);
        services.AddSingleton(settings.Compression);
        services.AddSingleton(settings.Encryption);
        services.AddSingleton(settings.Signing);
        services.AddSingleton(settings.Verify);
        services.AddSingleton(settings.Certificates);
        services.AddSingleton(settings.Clusters);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<ITransferProgress>(NoTransferProgress.Instance);
        services.AddStorage(settings.Storage);
        services.AddSingleton(provider => new ManifestCache(
            ManifestCache.DefaultDirectory(Environment.GetEnvironmentVariable), provider.GetRequiredService<TimeProvider>(), provider.GetRequiredService<ILogger<ManifestCache>>()));
        services.AddSingleton<StoredManifestCache>();
        services.AddSingleton<BackupCatalog>();
        services.AddSingleton<SshNodeConnector>();
        services.AddSingleton<TunnelSnapshotSource>();
        services.AddSingleton<ExecSnapshotSource>();
        services.AddSingleton<SetReservations>();
        services.AddSingleton<BackupRun>();
        services.AddSingleton<SetDownloader>();
        services.AddSingleton<SetVerifier>();
        services.AddTransient<ClusterRestore>();
        services.AddSingleton<RestoreExecutor>();
        services.AddSingleton<PruneService>();
        services.AddSingleton(settings.Scheduler);
        if (settings.Scheduler.Clustered)
        {
            services.AddSingleton<SchedulerDatabase>();
            services.AddSingleton<IClusterRunLock, PostgresRunLock>();
        }
        else
        {
            services.AddSingleton<IClusterRunLock, LocalRunLock>();
        }

        services.AddSingleton<BackupCycle>();
        services.AddSingleton(new AgentMetrics(
            new Prometheus.CollectorRegistry(), BackupRun.AgentVersion, settings.Scheduler.Clustered ? settings.Scheduler.Instance : null));
        services.AddSingleton<MetricsSeeder>();
        return services;
    }
}
