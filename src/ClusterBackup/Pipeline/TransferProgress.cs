namespace ClusterBackup.Pipeline;

/// <summary>Where the pipeline reports bytes moved for an artifact; the daemon and non-terminals report nowhere.</summary>
internal interface ITransferProgress
{
    /// <summary>Reports that <paramref name="bytes"/> plain bytes of <paramref name="artifact"/> have moved so far.</summary>
    void Report(string artifact, long bytes);

    /// <summary>The artifact is done: clear what was shown.</summary>
    void Complete(string artifact);
}

/// <summary>Reports nothing: for the daemon, and for a CLI whose stderr is not a terminal (so logs never carry progress).</summary>
internal sealed class NoTransferProgress : ITransferProgress
{
    public static readonly NoTransferProgress Instance = new();

    public void Report(string artifact, long bytes)
    {
    }

    public void Complete(string artifact)
    {
    }
}

/// <summary>A write-through stream that reports its byte count to an <see cref="ITransferProgress"/>.</summary>
internal sealed class ProgressStream(Stream inner, ITransferProgress progress, string artifact) : Stream
{
    private long _count;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => _count;

    public override long Position
    {
        get => _count;
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await inner.WriteAsync(buffer, cancellationToken);
        _count += buffer.Length;
        progress.Report(artifact, _count);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
