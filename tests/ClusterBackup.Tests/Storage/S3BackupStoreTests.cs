using ClusterBackup.Configuration;
using ClusterBackup.Rig;
using ClusterBackup.Storage;
using ClusterBackup.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterBackup.Tests.Storage;

/// <summary>The S3 store against moto_server: the full multipart API, including abort and listing uploads.</summary>
[Collection(RigCollection.Name)]
public sealed class MotoBackupStoreTests(RigFixture fixture) : BackupStoreConformance
{
    private protected override IBackupStore CreateStore() => S3Stores.Create(fixture.Rig.Moto);

    [Fact]
    public async Task An_abandoned_multipart_upload_is_aborted_on_the_server()
    {
        var store = CreateStore();
        var prefix = UniquePrefix();
        await using (var upload = await store.StartUploadAsync(prefix + "large"))
        {
            await upload.Content.WriteAsync(new byte[11 * 1024 * 1024]);
        }

        Assert.Empty(await fixture.Rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, prefix));
    }

    [Fact]
    public async Task Listing_pages_through_many_objects()
    {
        var store = S3Stores.Create(fixture.Rig.Moto, pageSize: 3);
        var prefix = UniquePrefix();
        var keys = Enumerable.Range(0, 10).Select(i => $"{prefix}{i:00}").ToList();
        foreach (var key in keys)
        {
            await WriteAsync(store, key, [1]);
        }

        Assert.Equal(keys, (await ListAsync(store, prefix)).Select(o => o.Key));
    }
}

/// <summary>The S3 store against s3rver: no aws-chunked framing, no abort (it is not implemented there).</summary>
[Collection(RigCollection.Name)]
public sealed class S3rverBackupStoreTests(RigFixture fixture) : BackupStoreConformance
{
    private protected override IBackupStore CreateStore() => S3Stores.Create(fixture.Rig.S3rver);

    private protected override bool HonoursExclusiveCreate => false;

    [Fact]
    public async Task Listing_pages_through_many_objects()
    {
        var store = S3Stores.Create(fixture.Rig.S3rver, pageSize: 3);
        var prefix = UniquePrefix();
        var keys = Enumerable.Range(0, 10).Select(i => $"{prefix}{i:00}").ToList();
        foreach (var key in keys)
        {
            await WriteAsync(store, key, [1]);
        }

        Assert.Equal(keys, (await ListAsync(store, prefix)).Select(o => o.Key));
    }
}

internal static class S3Stores
{
    public static S3BackupStore Create(S3Server server, int pageSize = 1000) => Create(server.Endpoint, pageSize: pageSize);

    /// <summary>A store of the rig's bucket at an endpoint (a server, or a relay in front of one), with 5 MiB parts; <paramref name="configure"/> changes the options.</summary>
    public static S3BackupStore Create(string endpoint, Func<StorageOptions, StorageOptions>? configure = null, int pageSize = 1000)
    {
        var options = new StorageOptions
        {
            Type = "s3",
            Bucket = LocalRig.Bucket,
            ServiceUrl = endpoint,
            ForcePathStyle = true,
            Region = S3Server.Region,
            PartSizeMiB = 5,
        };
        options = configure?.Invoke(options) ?? options;
        return new S3BackupStore(S3ClientFactory.Create(options), options, TimeProvider.System, NullLogger<S3BackupStore>.Instance) { ListPageSize = pageSize };
    }
}
