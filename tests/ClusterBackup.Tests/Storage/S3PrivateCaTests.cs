using ClusterBackup.Configuration;
using ClusterBackup.Rig;
using ClusterBackup.Storage;
using ClusterBackup.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterBackup.Tests.Storage;

/// <summary>An HTTPS endpoint whose certificate a private CA signed: trusted with Storage.CaFile, refused without.</summary>
[Collection(RigCollection.Name)]
public sealed class S3PrivateCaTests(RigFixture fixture) : IAsyncLifetime
{
    private S3Server _server = null!;

    public async Task InitializeAsync()
    {
        var pki = fixture.Rig.Pki;
        _server = await S3Server.StartS3rverAsync(Path.Combine(fixture.Rig.Root, "s3rver-tls"), fixture.Rig.Logs, (pki.EtcdServerCert, pki.EtcdServerKey));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private S3BackupStore Store(string? caFile)
    {
        var options = new StorageOptions
        {
            Bucket = "tls-bucket", ServiceUrl = _server.Endpoint, ForcePathStyle = true, Region = S3Server.Region, CaFile = caFile,
        };
        return new S3BackupStore(S3ClientFactory.Create(options), options, TimeProvider.System, NullLogger<S3BackupStore>.Instance);
    }

    [Fact]
    public async Task The_configured_CA_makes_the_endpoint_trusted_and_without_it_the_endpoint_is_refused()
    {
        var trusted = Store(fixture.Rig.Pki.EtcdCa);
        using (var client = S3ClientFactory.Create(new StorageOptions { ServiceUrl = _server.Endpoint, ForcePathStyle = true, CaFile = fixture.Rig.Pki.EtcdCa }))
        {
            await client.PutBucketAsync("tls-bucket");
        }

        await using (var upload = await trusted.StartUploadAsync("k"))
        {
            await upload.Content.WriteAsync(new byte[] { 1, 2, 3 });
            await upload.CommitAsync();
        }

        await using (var read = await trusted.OpenReadAsync("k"))
        {
            Assert.Equal(1, read.ReadByte());
        }

        var untrusted = Store(caFile: null);
        var ex = await Assert.ThrowsAsync<StorageException>(() => untrusted.OpenReadAsync("k"));
        Assert.Contains($"the TLS certificate of {_server.Endpoint} is not trusted: set Storage.CaFile", ex.Message, StringComparison.Ordinal);
    }
}
