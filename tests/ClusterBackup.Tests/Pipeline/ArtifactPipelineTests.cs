using System.Security.Cryptography;
using ClusterBackup.Encryption;
using ClusterBackup.Pipeline;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Pipeline;

public sealed class ArtifactPipelineTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cluster-backup-pipeline-").FullName;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3 * 1024 * 1024 + 7)]
    public async Task Output_decompresses_with_the_zstd_cli_and_the_digests_describe_both_sides(int size)
    {
        var plain = new byte[size];
        RandomNumberGenerator.Fill(plain.AsSpan(0, size / 2)); // half random, half zeros: compressible
        var stored = Path.Combine(_directory, "artifact.zst");

        ArtifactDigest digest;
        await using (var output = File.Create(stored))
        {
            digest = await ArtifactPipeline.CopyAsync(new MemoryStream(plain), output, compressionLevel: 3, recipients: []);
        }

        await Tools.CheckAsync("zstd", "-q", "-d", stored, "-o", Path.Combine(_directory, "artifact"));
        Assert.Equal(plain, await File.ReadAllBytesAsync(Path.Combine(_directory, "artifact")));
        var storedBytes = await File.ReadAllBytesAsync(stored);
        Assert.Equal(size, digest.PlainSize);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(plain)), digest.PlainSha256);
        Assert.Equal(storedBytes.Length, digest.StoredSize);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(storedBytes)), digest.StoredSha256);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(200_000)]
    public async Task Encrypted_output_opens_with_age_then_zstd_and_extracts_back_with_every_check(int size)
    {
        var (identity, keyFile) = await StoredArtifacts.NewIdentityAsync(_directory);
        var plain = RandomNumberGenerator.GetBytes(size);
        var stored = Path.Combine(_directory, "artifact.zst.age");

        ArtifactDigest digest;
        await using (var output = File.Create(stored))
        {
            digest = await ArtifactPipeline.CopyAsync(new MemoryStream(plain), output, 3, [identity.Recipient]);
        }

        await Tools.CheckAsync("sh", "-c", "age -d -i \"$0\" \"$1\" | zstd -q -d > \"$2\"", keyFile, stored, Path.Combine(_directory, "plain"));
        Assert.Equal(plain, await File.ReadAllBytesAsync(Path.Combine(_directory, "plain")));

        Assert.Equal(plain, await StoredArtifacts.ExtractAsync(stored, digest, identity));
    }

    [Fact]
    public async Task With_zstd_workers_the_output_still_decompresses_with_the_zstd_cli()
    {
        var plain = new byte[20 * 1024 * 1024];
        RandomNumberGenerator.Fill(plain.AsSpan(0, plain.Length / 3));
        var stored = Path.Combine(_directory, "artifact.zst");

        ArtifactDigest digest;
        await using (var output = File.Create(stored))
        {
            digest = await ArtifactPipeline.CopyAsync(new MemoryStream(plain), output, new CompressionSettings(3, Workers: 2), [], NoTransferProgress.Instance, "a");
        }

        await Tools.CheckAsync("zstd", "-q", "-d", stored, "-o", Path.Combine(_directory, "artifact"));
        Assert.Equal(plain, await File.ReadAllBytesAsync(Path.Combine(_directory, "artifact")));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(plain)), digest.PlainSha256);
    }

    [Fact]
    public async Task A_source_that_fails_midway_fails_the_copy_with_its_own_exception()
    {
        var source = new EndlessStream { FailAfter = 10 * 1024 * 1024 };
        var destination = new CountingSink();

        var ex = await Assert.ThrowsAsync<IOException>(() =>
            ArtifactPipeline.CopyAsync(source, destination, new CompressionSettings(3, Workers: 2), [], NoTransferProgress.Instance, "a"));

        Assert.Equal("the source broke", ex.Message);
    }

    [Fact]
    public async Task A_destination_that_fails_stops_the_reader_and_fails_the_copy()
    {
        var source = new EndlessStream();
        var destination = new CountingSink { FailAfter = 0 };

        var ex = await Assert.ThrowsAsync<IOException>(() =>
            ArtifactPipeline.CopyAsync(source, destination, new CompressionSettings(3), [], NoTransferProgress.Instance, "a").WaitAsync(TimeSpan.FromMinutes(2)));

        Assert.Equal("the destination broke", ex.Message);
        var read = source.BytesRead;
        await Task.Delay(200);
        Assert.Equal(read, source.BytesRead); // the reader stage stopped with the copy
    }

    [Fact]
    public async Task Cancellation_stops_both_stages()
    {
        var source = new EndlessStream { Delay = TimeSpan.FromMilliseconds(1) };
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            ArtifactPipeline.CopyAsync(source, new CountingSink(), new CompressionSettings(3, Workers: 2), [], NoTransferProgress.Instance, "a", cancel.Token)
                .WaitAsync(TimeSpan.FromMinutes(2)));

        var read = source.BytesRead;
        await Task.Delay(200);
        Assert.Equal(read, source.BytesRead);
    }

    [Fact]
    public async Task Extracting_with_a_manifest_that_does_not_match_names_the_mismatch()
    {
        var stored = new MemoryStream();
        var digest = await ArtifactPipeline.CopyAsync(new MemoryStream(new byte[1000]), stored, 3, []);

        var edited = digest with { StoredSha256 = new string('0', 64) };
        var ex = await Assert.ThrowsAsync<ArtifactCheckException>(() =>
            ArtifactPipeline.ExtractAsync(new MemoryStream(stored.ToArray()), Stream.Null, edited, identities: null));

        Assert.Equal(ArtifactCheckFailure.StoredDamaged, ex.Failure);
        Assert.Contains("differs from the manifest", ex.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
