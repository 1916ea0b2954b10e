using System.Security.Cryptography;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Etcd;

namespace ClusterBackup.Tests.Sources.Etcd;

public sealed class SnapshotTrailerCheckTests
{
    private static byte[] Snapshot(int pages)
    {
        var db = RandomNumberGenerator.GetBytes(pages * 4096);
        return [.. db, .. SHA256.HashData(db)];
    }

    /// <summary>Reads in chunks of the given sizes (cycled), as a network stream would deliver.</summary>
    private static async Task<byte[]> ReadAllAsync(byte[] data, params int[] chunks)
    {
        await using var check = new SnapshotTrailerCheck(new ChunkedStream(data, chunks), "cp1");
        using var output = new MemoryStream();
        var buffer = new byte[70_000];
        int read;
        while ((read = await check.ReadAsync(buffer)) > 0)
        {
            output.Write(buffer, 0, read);
        }

        return output.ToArray();
    }

    [Theory]
    [InlineData(32768)]
    [InlineData(1, 31, 32, 33)]
    [InlineData(5, 4096, 3)]
    public async Task An_intact_snapshot_passes_through_unchanged(params int[] chunks)
    {
        var snapshot = Snapshot(3);

        Assert.Equal(snapshot, await ReadAllAsync(snapshot, chunks));
    }

    [Fact]
    public async Task A_flipped_byte_fails_the_final_read()
    {
        var snapshot = Snapshot(3);
        snapshot[5000] ^= 0x01;

        var ex = await Assert.ThrowsAsync<NodeOperationException>(() => ReadAllAsync(snapshot, 1000));

        Assert.Equal("cp1", ex.Node);
        Assert.Contains("does not match etcd's trailer", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cut_short_stream_is_reported_as_such()
    {
        var snapshot = Snapshot(3)[..10_000];

        var ex = await Assert.ThrowsAsync<NodeOperationException>(() => ReadAllAsync(snapshot, 4096));

        Assert.Contains("cut short", ex.Message, StringComparison.Ordinal);
    }

    private sealed class ChunkedStream(byte[] data, int[] chunks) : MemoryStream(data)
    {
        private int _next;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var size = Math.Min(buffer.Length, chunks[_next++ % chunks.Length]);
            return base.ReadAsync(buffer[..size], cancellationToken);
        }
    }
}
