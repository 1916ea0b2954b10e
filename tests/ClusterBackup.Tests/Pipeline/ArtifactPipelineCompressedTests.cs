using System.IO.Pipelines;
using System.Security.Cryptography;
using ClusterBackup.Encryption;
using ClusterBackup.Pipeline;
using ClusterBackup.Rig;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Etcd;
using ZstdSharp;

namespace ClusterBackup.Tests.Pipeline;

/// <summary>
/// A snapshot the node compressed with its own zstd: stored as it came, and checked (etcd's
/// trailer, the plain hash) by decompressing the same bytes.
/// </summary>
public sealed class ArtifactPipelineCompressedTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cluster-backup-pipeline-").FullName;

    private static Stream Check(Stream decompressed) => new SnapshotTrailerCheck(decompressed, "cp1");

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public async Task What_the_zstd_cli_compressed_is_stored_as_it_came_and_opens_with_age_then_zstd(int megabytes)
    {
        var (identity, keyFile) = await StoredArtifacts.NewIdentityAsync(_directory);
        var snapshot = Snapshot(megabytes * 1024 * 1024);
        var compressed = await CompressWithCliAsync(snapshot);
        var stored = Path.Combine(_directory, "etcd.db.zst.age");

        ArtifactDigest digest;
        await using (var output = File.Create(stored))
        {
            digest = await ArtifactPipeline.CopyCompressedAsync(new MemoryStream(compressed), Check, output, [identity.Recipient], NoTransferProgress.Instance, "a");
        }

        await Tools.CheckAsync("age", "-d", "-i", keyFile, "-o", Path.Combine(_directory, "etcd.db.zst"), stored);
        Assert.Equal(compressed, await File.ReadAllBytesAsync(Path.Combine(_directory, "etcd.db.zst")));
        await Tools.CheckAsync("zstd", "-q", "-d", Path.Combine(_directory, "etcd.db.zst"), "-o", Path.Combine(_directory, "etcd.db"));
        Assert.Equal(snapshot, await File.ReadAllBytesAsync(Path.Combine(_directory, "etcd.db")));
        var storedBytes = await File.ReadAllBytesAsync(stored);
        Assert.Equal(new ArtifactDigest(snapshot.Length, Sha256(snapshot), storedBytes.Length, Sha256(storedBytes)), digest);

        Assert.Equal(snapshot, await StoredArtifacts.ExtractAsync(stored, digest, identity));
    }

    [Fact]
    public async Task A_snapshot_that_fails_its_check_fails_the_copy_with_the_checks_exception()
    {
        var snapshot = Snapshot(2 * 1024 * 1024);
        snapshot[5000] ^= 0xff; // damaged before the node compressed it
        var compressed = await CompressWithCliAsync(snapshot);

        var ex = await Assert.ThrowsAsync<NodeOperationException>(() =>
            ArtifactPipeline.CopyCompressedAsync(new MemoryStream(compressed), Check, new CountingSink(), [], NoTransferProgress.Instance, "a"));

        Assert.Equal("the snapshot's SHA-256 does not match etcd's trailer: the data was damaged in transit", ex.Message);
    }

    [Fact]
    public async Task Bytes_that_are_not_zstd_or_a_cut_zstd_stream_fail_the_copy_and_say_which()
    {
        var garbage = RandomNumberGenerator.GetBytes(1024 * 1024);
        var compressed = await CompressWithCliAsync(Snapshot(4 * 1024 * 1024));

        var notZstd = await Assert.ThrowsAsync<InvalidDataException>(() =>
            ArtifactPipeline.CopyCompressedAsync(new MemoryStream(garbage), Check, new CountingSink(), [], NoTransferProgress.Instance, "a"));
        var cut = await Assert.ThrowsAsync<InvalidDataException>(() =>
            ArtifactPipeline.CopyCompressedAsync(new MemoryStream(compressed[..(compressed.Length / 2)]), Check, new CountingSink(), [], NoTransferProgress.Instance, "a"));

        Assert.StartsWith("the compressed stream it sent is not valid zstd: ", notZstd.Message, StringComparison.Ordinal);
        Assert.Equal("the compressed stream it sent is truncated", cut.Message);
    }

    [Fact]
    public async Task A_destination_that_fails_fails_the_copy_with_its_own_exception_and_stops_the_check()
    {
        var progress = new CountingProgress();

        var ex = await Assert.ThrowsAsync<IOException>(() =>
            ArtifactPipeline.CopyCompressedAsync(SlowZstd(), Check, new CountingSink { FailAfter = 0 }, [], progress, "a")
                .WaitAsync(TimeSpan.FromMinutes(2)));

        Assert.Equal("the destination broke", ex.Message);
        await AssertStopsAsync(progress);
    }

    [Fact]
    public async Task Cancellation_stops_both_stages()
    {
        var progress = new CountingProgress();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            ArtifactPipeline.CopyCompressedAsync(SlowZstd(), Check, new CountingSink(), [], progress, "a", cancel.Token)
                .WaitAsync(TimeSpan.FromMinutes(2)));

        Assert.True(progress.Bytes > 0, "the check stage had started");
        await AssertStopsAsync(progress);
    }

    /// <summary>A database of <paramref name="size"/> bytes (compressible, a multiple of 512) and etcd's SHA-256 trailer.</summary>
    private static byte[] Snapshot(int size)
    {
        var snapshot = new byte[size + SnapshotTrailerCheck.TrailerSize];
        RandomNumberGenerator.Fill(snapshot.AsSpan(0, size / 4));
        SHA256.HashData(snapshot.AsSpan(0, size), snapshot.AsSpan(size));
        return snapshot;
    }

    /// <summary>As the node does it: the zstd CLI at level 1 with two threads.</summary>
    private async Task<byte[]> CompressWithCliAsync(byte[] plain)
    {
        var path = Path.Combine(_directory, "snapshot.db");
        await File.WriteAllBytesAsync(path, plain);
        await Tools.CheckAsync("zstd", "-q", "-f", "-1", "-T2", path, "-o", path + ".zst");
        return await File.ReadAllBytesAsync(path + ".zst");
    }

    /// <summary>Valid zstd that never ends, arriving at some 60 MB/s of plain bytes.</summary>
    private static Stream SlowZstd()
    {
        var pipe = new Pipe();
        _ = Task.Run(async () =>
        {
            await using var compressor = new CompressionStream(pipe.Writer.AsStream(), 1);
            await new EndlessStream { Delay = TimeSpan.FromMilliseconds(1) }.CopyToAsync(compressor);
        });
        return pipe.Reader.AsStream();
    }

    private static async Task AssertStopsAsync(CountingProgress progress)
    {
        await Task.Delay(300);
        var checkedBytes = progress.Bytes;
        await Task.Delay(300);
        Assert.Equal(checkedBytes, progress.Bytes);
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private sealed class CountingProgress : ITransferProgress
    {
        private long _bytes;

        public long Bytes => Interlocked.Read(ref _bytes);

        public void Report(string artifact, long bytes) => Interlocked.Exchange(ref _bytes, bytes);

        public void Complete(string artifact)
        {
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
