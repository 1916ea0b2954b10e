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
        var keyFile = Path.Combine(_directory, "key.txt");
        await Tools.CheckAsync("age-keygen", "-o", keyFile);
        var identity = AgeIdentity.ParseFile(await File.ReadAllTextAsync(keyFile), keyFile)[0];
        var plain = RandomNumberGenerator.GetBytes(size);
        var stored = Path.Combine(_directory, "artifact.zst.age");

        ArtifactDigest digest;
        await using (var output = File.Create(stored))
        {
            digest = await ArtifactPipeline.CopyAsync(new MemoryStream(plain), output, 3, [identity.Recipient]);
        }

        await Tools.CheckAsync("sh", "-c", "age -d -i \"$0\" \"$1\" | zstd -q -d > \"$2\"", keyFile, stored, Path.Combine(_directory, "plain"));
        Assert.Equal(plain, await File.ReadAllBytesAsync(Path.Combine(_directory, "plain")));

        using var extracted = new MemoryStream();
        await using (var input = File.OpenRead(stored))
        {
            await ArtifactPipeline.ExtractAsync(input, extracted, digest, [identity]);
        }

        Assert.Equal(plain, extracted.ToArray());
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
