using ClusterBackup.Storage;

namespace ClusterBackup.Tests.Storage;

public sealed class FileSystemBackupStoreTests : BackupStoreConformance, IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cluster-backup-fs-").FullName;

    private protected override IBackupStore CreateStore() => new FileSystemBackupStore(_root);

    [Fact]
    public async Task Objects_are_private_to_the_agent_user()
    {
        var store = CreateStore();
        var key = UniquePrefix() + "secret";

        await WriteAsync(store, key, [1]);

        var path = Path.Combine(_root, key);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public async Task An_upload_in_progress_is_neither_listed_nor_readable()
    {
        var store = CreateStore();
        var prefix = UniquePrefix();
        await using var upload = await store.StartUploadAsync(prefix + "in-progress");
        await upload.Content.WriteAsync(new byte[100]);

        Assert.Empty(await ListAsync(store, prefix));
        await Assert.ThrowsAsync<StoredObjectNotFoundException>(() => store.OpenReadAsync(prefix + "in-progress"));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
