namespace ClusterBackup.Streams;

/// <summary>
/// Reads an inner stream through unchanged and shows every chunk read to <see cref="Observe"/>: the
/// base of streams that check or inspect what passes (etcd's trailer, the certificates of a tar).
/// Owns the inner stream.
/// </summary>
internal abstract class ObservedReadStream(Stream inner) : ReadOnlyStream
{
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        Observe(buffer[..read]);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken);
        Observe(buffer.Span[..read]);
        return read;
    }

    /// <summary>Sees each chunk as it is read; an empty chunk is the end of the stream.</summary>
    protected abstract void Observe(ReadOnlySpan<byte> data);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Disposes the inner stream asynchronously (a remote command's stream checks its exit there), then the rest.</summary>
    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        Dispose(); // streams dispose idempotently: the inner one is not disposed twice in effect
    }
}
