using ClusterBackup.Restore;
using ClusterBackup.Streams;

namespace ClusterBackup.Tests.Restore;

/// <summary>A content shared by the uploads of several members: produced once, written into all together.</summary>
public sealed class RestoreContentTests
{
    private static readonly byte[] Bytes = Enumerable.Range(0, 1 << 20).Select(i => (byte)(i * 7 % 251)).ToArray();

    [Fact]
    public async Task Three_uploads_each_get_every_byte_of_one_production()
    {
        var produced = 0;
        var content = RestoreContent.Shared("snapshot", 3, async (destination, ct) =>
        {
            Interlocked.Increment(ref produced);
            for (var offset = 0; offset < Bytes.Length; offset += 64 * 1024)
            {
                await destination.WriteAsync(Bytes.AsMemory(offset, 64 * 1024), ct);
            }
        });
        var destinations = Enumerable.Range(0, 3).Select(_ => new MemoryStream()).ToList();

        await Task.WhenAll(destinations.Select(d => Task.Run(() => content.WriteToAsync(d, CancellationToken.None))));

        Assert.Equal(1, produced);
        Assert.All(destinations, d => Assert.Equal(Bytes, d.ToArray()));
    }

    [Fact]
    public async Task An_upload_that_breaks_fails_every_upload_of_it()
    {
        var content = RestoreContent.Shared("snapshot", 3, (destination, ct) => destination.WriteAsync(Bytes, ct).AsTask());
        var broken = new WriteOnlyStream((_, _) => throw new IOException("disk full"));

        var uploads = new Stream[] { new MemoryStream(), broken, new MemoryStream() }.Select(d => Task.Run(() => content.WriteToAsync(d, CancellationToken.None))).ToList();

        foreach (var upload in uploads)
        {
            var ex = await Assert.ThrowsAsync<IOException>(() => upload);
            Assert.Equal("disk full", ex.Message);
        }
    }

    [Fact]
    public async Task An_upload_cancelled_before_the_others_join_fails_them_and_nothing_is_produced()
    {
        var produced = false;
        var content = RestoreContent.Shared("snapshot", 2, (_, _) =>
        {
            produced = true;
            return Task.CompletedTask;
        });
        using var cancel = new CancellationTokenSource();

        var first = content.WriteToAsync(new MemoryStream(), cancel.Token);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => content.WriteToAsync(new MemoryStream(), CancellationToken.None));
        Assert.False(produced);
        await Assert.ThrowsAsync<InvalidOperationException>(() => content.WriteToAsync(new MemoryStream(), CancellationToken.None));
    }
}
