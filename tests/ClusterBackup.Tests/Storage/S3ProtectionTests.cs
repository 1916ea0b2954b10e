using System.Text.Json;
using Amazon.S3.Model;
using ClusterBackup.Configuration;
using ClusterBackup.Rig;
using ClusterBackup.Storage;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Storage;

/// <summary>Server-side encryption and Object Lock retention on upload, checked on moto with the aws CLI.</summary>
[Collection(RigCollection.Name)]
public sealed class S3ProtectionTests(RigFixture fixture)
{
    private readonly S3Server _moto = fixture.Rig.Moto;

    private S3BackupStore Store(string bucket, Func<StorageOptions, StorageOptions> configure) =>
        S3Stores.Create(_moto.Endpoint, o => configure(o with { Bucket = bucket }));

    private static async Task WriteAsync(IBackupStore store, string key, int size)
    {
        await using var upload = await store.StartUploadAsync(key);
        await upload.Content.WriteAsync(new byte[size]);
        await upload.CommitAsync();
    }

    private async Task<JsonElement> AwsJsonAsync(params string[] arguments)
    {
        var result = await _moto.AwsAsync([.. arguments, "--output", "json"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonSerializer.Deserialize<JsonElement>(result.Output);
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(6 * 1024 * 1024)]
    public async Task With_object_lock_an_object_cannot_be_deleted_before_its_retention_date(int size)
    {
        var bucket = $"locked-{Guid.NewGuid():N}"[..20];
        using (var client = _moto.CreateClient())
        {
            await client.PutBucketAsync(new PutBucketRequest { BucketName = bucket, ObjectLockEnabledForBucket = true });
        }

        var store = Store(bucket, o => o with { ObjectLock = new ObjectLockOptions { Mode = "GOVERNANCE", Days = 2 } });
        await WriteAsync(store, "set/etcd.db.zst.age", size);

        // head-object, not get-object-retention: moto answers the latter with a 500.
        var head = await AwsJsonAsync("s3api", "head-object", "--bucket", bucket, "--key", "set/etcd.db.zst.age");
        Assert.Equal("GOVERNANCE", head.GetProperty("ObjectLockMode").GetString());
        var until = head.GetProperty("ObjectLockRetainUntilDate").GetDateTimeOffset();
        Assert.InRange(until, DateTimeOffset.UtcNow.AddDays(2).AddMinutes(-10), DateTimeOffset.UtcNow.AddDays(2).AddMinutes(10));

        var version = head.GetProperty("VersionId").GetString()!;
        var delete = await _moto.AwsAsync("s3api", "delete-object", "--bucket", bucket, "--key", "set/etcd.db.zst.age", "--version-id", version);
        Assert.NotEqual(0, delete.ExitCode);
        Assert.Contains("AccessDenied", delete.Error, StringComparison.Ordinal);
        Assert.Equal(version, (await AwsJsonAsync("s3api", "head-object", "--bucket", bucket, "--key", "set/etcd.db.zst.age", "--version-id", version)).GetProperty("VersionId").GetString());
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(6 * 1024 * 1024)]
    public async Task Server_side_encryption_is_requested_on_every_upload(int size)
    {
        var store = Store(LocalRig.Bucket, o => o with { ServerSideEncryption = ServerSideEncryptionTypes.S3 });
        var key = $"sse/{Guid.NewGuid():N}";

        await WriteAsync(store, key, size);

        var head = await AwsJsonAsync("s3api", "head-object", "--bucket", LocalRig.Bucket, "--key", key);
        Assert.Equal("AES256", head.GetProperty("ServerSideEncryption").GetString());
    }
}
