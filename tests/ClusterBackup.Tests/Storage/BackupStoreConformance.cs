using System.Security.Cryptography;
using ClusterBackup.Storage;

namespace ClusterBackup.Tests.Storage;

/// <summary>
/// The behaviour every <see cref="IBackupStore"/> promises. Each store's test class only says how
/// to build one; the same tests run on the filesystem, moto_server and s3rver.
/// </summary>
public abstract class BackupStoreConformance
{
    /// <summary>A store over an empty namespace, with multipart part size 5 MiB where that applies.</summary>
    private protected abstract IBackupStore CreateStore();

    private protected static string UniquePrefix() => $"conformance/{Guid.NewGuid():N}/";

    /// <summary>Whether the server honours <c>If-None-Match: *</c>; s3rver, like some S3-compatibles, ignores it.</summary>
    private protected virtual bool HonoursExclusiveCreate => true;

    [Fact]
    public async Task An_exclusive_create_writes_once_and_then_refuses_where_the_store_can()
    {
        var store = CreateStore();
        var key = UniquePrefix() + "manifest.json";

        Assert.True(await store.CreateExclusiveAsync(key, "first"u8.ToArray()));
        var second = await store.CreateExclusiveAsync(key, "second"u8.ToArray());

        Assert.Equal(!HonoursExclusiveCreate, second);
        Assert.Equal(HonoursExclusiveCreate ? "first"u8.ToArray() : "second"u8.ToArray(), await ReadAsync(store, key));
        Assert.Single(await ListAsync(store, key));
    }

    [Fact]
    public async Task A_committed_object_reads_back_identical()
    {
        var store = CreateStore();
        var key = UniquePrefix() + "small.bin";
        var data = RandomNumberGenerator.GetBytes(10_000);

        await WriteAsync(store, key, data);

        Assert.Equal(data, await ReadAsync(store, key));
    }

    [Fact]
    public async Task An_empty_object_can_be_stored()
    {
        var store = CreateStore();
        var key = UniquePrefix() + "empty";

        await WriteAsync(store, key, []);

        Assert.Empty(await ReadAsync(store, key));
        var listed = Assert.Single(await ListAsync(store, key));
        Assert.Equal(0, listed.Size);
    }

    [Fact]
    public async Task An_object_larger_than_a_part_written_in_odd_chunks_reads_back_identical()
    {
        var store = CreateStore();
        var key = UniquePrefix() + "large.bin";
        var data = RandomNumberGenerator.GetBytes((12 * 1024 * 1024) + 12345);

        await using (var upload = await store.StartUploadAsync(key))
        {
            for (var offset = 0; offset < data.Length; offset += 777_777)
            {
                await upload.Content.WriteAsync(data.AsMemory(offset, Math.Min(777_777, data.Length - offset)));
            }

            await upload.CommitAsync();
        }

        Assert.Equal(SHA256.HashData(data), SHA256.HashData(await ReadAsync(store, key)));
        Assert.Equal(data.Length, Assert.Single(await ListAsync(store, key)).Size);
    }

    [Fact]
    public async Task An_upload_disposed_without_commit_leaves_nothing()
    {
        var store = CreateStore();
        var prefix = UniquePrefix();
        await using (var upload = await store.StartUploadAsync(prefix + "small"))
        {
            await upload.Content.WriteAsync(RandomNumberGenerator.GetBytes(1000));
        }

        await using (var upload = await store.StartUploadAsync(prefix + "large"))
        {
            await upload.Content.WriteAsync(RandomNumberGenerator.GetBytes(11 * 1024 * 1024));
        }

        Assert.Empty(await ListAsync(store, prefix));
        await Assert.ThrowsAsync<StoredObjectNotFoundException>(() => store.OpenReadAsync(prefix + "large"));
    }

    [Fact]
    public async Task Committing_replaces_an_existing_object()
    {
        var store = CreateStore();
        var key = UniquePrefix() + "object";
        await WriteAsync(store, key, [1, 2, 3]);

        await WriteAsync(store, key, [4, 5]);

        Assert.Equal([4, 5], await ReadAsync(store, key));
    }

    [Fact]
    public async Task Listing_returns_every_object_under_the_prefix_in_key_order()
    {
        var store = CreateStore();
        var prefix = UniquePrefix();
        string[] keys = [$"{prefix}b/2", $"{prefix}a/1", $"{prefix}b/1", $"{prefix}c", $"{prefix}a/2"];
        foreach (var key in keys)
        {
            await WriteAsync(store, key, [42]);
        }

        await WriteAsync(store, prefix[..^1] + "-sibling/x", [1]);

        var listed = await ListAsync(store, prefix);
        Assert.Equal(keys.Order(StringComparer.Ordinal), listed.Select(o => o.Key));
        Assert.All(listed, o => Assert.Equal(1, o.Size));
        Assert.Equal([$"{prefix}b/1", $"{prefix}b/2"], (await ListAsync(store, prefix + "b/")).Select(o => o.Key));
        Assert.Empty(await ListAsync(store, prefix + "nothing/"));
    }

    [Fact]
    public async Task Reading_a_missing_object_throws_not_found()
    {
        var store = CreateStore();

        await Assert.ThrowsAsync<StoredObjectNotFoundException>(() => store.OpenReadAsync(UniquePrefix() + "missing"));
    }

    [Fact]
    public async Task Delete_removes_an_object_and_a_missing_one_is_no_error()
    {
        var store = CreateStore();
        var prefix = UniquePrefix();
        await WriteAsync(store, prefix + "x", [1]);
        await WriteAsync(store, prefix + "y", [2]);

        await store.DeleteAsync(prefix + "x");
        await store.DeleteAsync(prefix + "never-existed");

        Assert.Equal([prefix + "y"], (await ListAsync(store, prefix)).Select(o => o.Key));
    }

    private protected static async Task WriteAsync(IBackupStore store, string key, byte[] data)
    {
        await using var upload = await store.StartUploadAsync(key);
        await upload.Content.WriteAsync(data);
        await upload.CommitAsync();
    }

    private protected static async Task<byte[]> ReadAsync(IBackupStore store, string key)
    {
        await using var stream = await store.OpenReadAsync(key);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    private protected static async Task<List<StoredObject>> ListAsync(IBackupStore store, string prefix)
    {
        var result = new List<StoredObject>();
        await foreach (var item in store.ListAsync(prefix))
        {
            result.Add(item);
        }

        return result;
    }
}
