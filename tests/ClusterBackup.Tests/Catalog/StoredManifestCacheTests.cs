using System.Security.Cryptography;
using System.Text;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Rig;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterBackup.Tests.Catalog;

/// <summary>The stored manifest cache on a directory store: what is written, what is read back, and when it is not written.</summary>
public sealed class StoredManifestCacheTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cluster-backup-stored-cache-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData(3, 3, false)] // fewer than four are read one by one
    [InlineData(4, 4, true)]
    [InlineData(62, 1000, false)] // a local cache that lacks only the newest sets
    [InlineData(63, 1000, true)]
    [InlineData(1000, 1000, true)] // a workstation that never scanned the cluster
    public void The_stored_copy_is_read_when_four_and_a_sixteenth_of_the_listed_manifests_are_missing(int missing, int listed, bool read) =>
        Assert.Equal(read, StoredManifestCache.WorthReading(missing, listed));

    [Fact]
    public async Task It_is_the_local_caches_format_compressed_as_zstd_reads_it_and_only_the_entries_asked_for_come_back()
    {
        var store = new FileSystemBackupStore(_root);
        var cache = new StoredManifestCache(store, NullLogger<StoredManifestCache>.Instance);
        var entries = new[] { "{\"setId\":\"20261128T120000Z\"}", "{\"setId\":\"20261128T130000Z\"}" }
            .Select(Encoding.UTF8.GetBytes).ToDictionary(Md5, bytes => bytes);

        await cache.WriteAsync("prod/manifests.cache.zst", entries, CancellationToken.None);

        await Tools.CheckAsync("zstd", "-q", "-d", Path.Combine(_root, "prod/manifests.cache.zst"), "-o", Path.Combine(_root, "plain"));
        using (var plain = File.OpenRead(Path.Combine(_root, "plain")))
        {
            Assert.Equal(entries, ManifestCache.ReadEntries(plain, _ => true).ToDictionary());
        }

        var wanted = entries.Keys.First();
        Assert.Equal([wanted], (await cache.ReadAsync("prod/manifests.cache.zst", md5 => md5 == wanted, bytes => bytes, CancellationToken.None)).Keys);
        Assert.Empty(await cache.ReadAsync("prod/none.zst", md5 => md5 == wanted, bytes => bytes, CancellationToken.None));
        await File.WriteAllTextAsync(Path.Combine(_root, "prod/manifests.cache.zst"), "not zstd");
        Assert.Empty(await cache.ReadAsync("prod/manifests.cache.zst", md5 => md5 == wanted, bytes => bytes, CancellationToken.None));
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("GOVERNANCE", false)] // each write would be a version kept for the lock's days
    public async Task A_backup_writes_the_kept_sets_manifests_known_by_their_MD5_except_under_object_lock(string? lockMode, bool written)
    {
        var store = new FileSystemBackupStore(_root);
        var options = new StorageOptions { Type = "filesystem", Path = _root, ObjectLock = new ObjectLockOptions { Mode = lockMode, Days = lockMode is null ? 0 : 1 } };
        var catalog = Catalog(store, options);
        var known = Encoding.UTF8.GetBytes("{\"setId\":\"20261128T120000Z\"}");
        StoredSet[] sets =
        [
            Set("20261128T120000Z", known) with { ManifestMd5 = Md5(known) },
            Set("20261128T130000Z", Encoding.UTF8.GetBytes("{}")), // its listing gave no MD5
        ];

        await catalog.WriteStoredCacheAsync("prod", sets);

        var path = Path.Combine(_root, "backups/prod/manifests.cache.zst");
        Assert.Equal(written, File.Exists(path));
        if (written)
        {
            var read = await new StoredManifestCache(store, NullLogger<StoredManifestCache>.Instance)
                .ReadAsync("backups/prod/manifests.cache.zst", _ => true, bytes => bytes, CancellationToken.None);
            Assert.Equal([Md5(known)], read.Keys);
        }
    }

    [Fact]
    public async Task A_copy_that_cannot_be_written_fails_nothing_and_the_next_backup_writes_it()
    {
        var store = new FileSystemBackupStore(_root);
        var catalog = Catalog(store, new StorageOptions { Type = "filesystem", Path = _root });
        var known = Encoding.UTF8.GetBytes("{\"setId\":\"20261128T120000Z\"}");
        StoredSet[] sets = [Set("20261128T120000Z", known) with { ManifestMd5 = Md5(known) }];
        var path = Path.Combine(_root, "backups/prod/manifests.cache.zst");
        Directory.CreateDirectory(Path.Combine(path, "in-the-way"));

        await catalog.WriteStoredCacheAsync("prod", sets); // logged, not thrown

        Assert.True(Directory.Exists(Path.Combine(path, "in-the-way")));
        Directory.Delete(path, recursive: true);
        await catalog.WriteStoredCacheAsync("prod", sets);
        Assert.True(File.Exists(path));
    }

    private static BackupCatalog Catalog(FileSystemBackupStore store, StorageOptions options) => new(
        store, options, new ManifestCache(null, TimeProvider.System, NullLogger<ManifestCache>.Instance),
        new StoredManifestCache(store, NullLogger<StoredManifestCache>.Instance), NullLogger<BackupCatalog>.Instance);

    private static StoredSet Set(string id, byte[] manifest)
    {
        SetId.TryParse(id, out var setId);
        return new StoredSet(setId, SetState.Complete, 1, DateTimeOffset.UnixEpoch, [], ManifestBytes: manifest);
    }

    private static string Md5(byte[] bytes) => Convert.ToHexStringLower(MD5.HashData(bytes));
}
