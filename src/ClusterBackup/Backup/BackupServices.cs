using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Sources.Etcd;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterBackup.Backup;

internal static class BackupServices
{
    /// <summary>Everything a backup run needs, from validated settings.</summary>
    public static IServiceCollection AddClusterBackup(this IServiceCollection services, AgentSettings settings)
    {
        services.AddSingleton(settings);
        services.AddSingleton(settings.Storage);
        services.AddSingleton(TimeProvider.System);
        services.AddStorage(settings.Storage);
        services.AddSingleton<BackupCatalog>();
        services.AddSingleton<SshNodeConnector>();
        services.AddSingleton<TunnelSnapshotSource>();
        services.AddSingleton<ExecSnapshotSource>();
        services.AddSingleton<BackupRun>();
        return services;
    }
}
