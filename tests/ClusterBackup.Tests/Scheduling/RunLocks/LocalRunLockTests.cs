using ClusterBackup.Backup;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Scheduling.RunLocks;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterBackup.Tests.Scheduling.RunLocks;

/// <summary>The single-agent run lock: a flock, which the kernel keeps per open file, so one process can race itself.</summary>
public sealed class LocalRunLockTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cluster-backup-runlock-").FullName;

    [Fact]
    public async Task A_held_cluster_is_busy_until_released_and_other_clusters_and_stores_are_not()
    {
        var one = Lock("store-1");
        var held = Assert.IsType<RunLockHeld>(await one.TryAcquireAsync("prod", CancellationToken.None));

        var busy = Assert.IsType<RunLockBusy>(await one.TryAcquireAsync("prod", CancellationToken.None));
        Assert.Contains("another process on this host", busy.Holder, StringComparison.Ordinal);
        await using (Assert.IsType<RunLockHeld>(await one.TryAcquireAsync("lab", CancellationToken.None)).Release)
        {
            // another cluster of the same store
        }

        await using (Assert.IsType<RunLockHeld>(await Lock("store-2").TryAcquireAsync("prod", CancellationToken.None)).Release)
        {
            // the same cluster name in other storage: other sets, another lock
        }

        await held.Release.DisposeAsync();
        await using var again = Assert.IsType<RunLockHeld>(await one.TryAcquireAsync("prod", CancellationToken.None)).Release;
    }

    [Fact]
    public void Lock_names_depend_on_where_the_sets_are_stored()
    {
        Assert.Equal(RunLockKey.FileName("s3://a/backups/prod"), RunLockKey.FileName("s3://a/backups/prod"));
        Assert.NotEqual(RunLockKey.FileName("s3://a/backups/prod"), RunLockKey.FileName("s3://b/backups/prod"));
        Assert.Matches("^[0-9a-f]{32}\\.lock$", RunLockKey.FileName("x"));
        Assert.InRange(RunLockKey.AdvisoryObjectId("s3://a/backups/prod"), 0, int.MaxValue);
    }

    private LocalRunLock Lock(string store)
    {
        var backups = new FileSystemBackupStore(Path.Combine(_root, store));
        return new LocalRunLock(backups, new BackupCatalog(
            backups, new StorageOptions { Type = "filesystem", Path = Path.Combine(_root, store) },
            new ManifestCache(null, TimeProvider.System, NullLogger<ManifestCache>.Instance),
            new StoredManifestCache(backups, NullLogger<StoredManifestCache>.Instance), NullLogger<BackupCatalog>.Instance));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
