using ClusterBackup.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Storage;

internal static class StorageServices
{
    public static IServiceCollection AddStorage(this IServiceCollection services, StorageOptions options) =>
        options.Type == "filesystem"
            ? services.AddSingleton<IBackupStore>(new FileSystemBackupStore(options.Path!))
            : services.AddSingleton<IBackupStore>(sp =>
                new S3BackupStore(S3ClientFactory.Create(options), options, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<S3BackupStore>>()));
}
