using System.Security.Cryptography;
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
            digest = await ArtifactPipeline.CopyAsync(new MemoryStream(plain), output, compressionLevel: 3);
        }

        await Tools.CheckAsync("zstd", "-q", "-d", stored, "-o", Path.Combine(_directory, "artifact"));
        Assert.Equal(plain, await File.ReadAllBytesAsync(Path.Combine(_directory, "artifact")));
        var storedBytes = await File.ReadAllBytesAsync(stored);
        Assert.Equal(size, digest.PlainSize);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(plain)), digest.PlainSha256);
        Assert.Equal(storedBytes.Length, digest.StoredSize);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(storedBytes)), digest.StoredSha256);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
