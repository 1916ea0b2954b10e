using System.Security.Cryptography;
using ClusterBackup.Rig;
using ClusterBackup.Storage;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Storage;

/// <summary>
/// Part uploads overlap with filling the next part, behind a throttled relay in front of moto_server:
/// memory stays at (PartsInFlight + 1) parts however slow the destination, and a part that fails
/// fails the upload, which is aborted and leaves nothing.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class S3UploadConcurrencyTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    private static S3BackupStore Store(TcpRelay relay, int partsInFlight) =>
        S3Stores.Create(relay.Endpoint, o => o with { PartsInFlight = partsInFlight });

    [Fact]
    public async Task A_slow_destination_holds_memory_at_parts_in_flight_plus_one_and_the_object_is_whole()
    {
        await using var relay = new TcpRelay(_rig.Moto.Port, bytesPerSecond: 3_000_000).Start();
        var store = Store(relay, partsInFlight: 2);
        var key = $"concurrency/{Guid.NewGuid():N}";
        var data = RandomNumberGenerator.GetBytes(28 * 1024 * 1024);

        int peak;
        await using (var upload = await store.StartUploadAsync(key))
        {
            for (var offset = 0; offset < data.Length; offset += 1024 * 1024)
            {
                await upload.Content.WriteAsync(data.AsMemory(offset, 1024 * 1024));
            }

            await upload.CommitAsync();
            peak = Assert.IsType<S3BackupStore.S3ObjectUpload>(upload).PeakBuffers;
        }

        Assert.Equal(3, peak); // the part filling and two uploading, never more, for six parts
        await using var read = await store.OpenReadAsync(key);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(copy.ToArray()));
    }

    [Fact]
    public async Task A_part_that_fails_fails_the_upload_which_is_aborted_and_leaves_nothing()
    {
        await using var relay = new TcpRelay(_rig.Moto.Port, bytesPerSecond: 3_000_000).Start();
        var store = Store(relay, partsInFlight: 3);
        var prefix = $"concurrency-cut/{Guid.NewGuid():N}/";
        var key = prefix + "object";

        var upload = await store.StartUploadAsync(key);
        var failed = await Assert.ThrowsAnyAsync<StorageException>(async () =>
        {
            for (var i = 0; i < 40; i++)
            {
                await upload.Content.WriteAsync(RandomNumberGenerator.GetBytes(1024 * 1024));
                if (relay.Forwarded > 8 * 1024 * 1024)
                {
                    relay.Cut(); // the connection goes while parts are in flight
                }
            }

            await upload.CommitAsync();
        });

        relay.Start(); // the server is back for the abort
        await upload.DisposeAsync();

        Assert.Contains("upload", failed.Message, StringComparison.Ordinal);
        Assert.Empty(await _rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, prefix));
        await Assert.ThrowsAsync<StoredObjectNotFoundException>(async () => await (await store.OpenReadAsync(key)).DisposeAsync());
    }
}
