using ClusterBackup.Sources.Etcd.Protocol;
using Grpc.Core;

namespace ClusterBackup.Sources.Etcd;

/// <summary>The blobs of a <c>Maintenance.Snapshot</c> call as one byte stream (data, then the hash message).</summary>
internal sealed class GrpcSnapshotStream(AsyncServerStreamingCall<SnapshotResponse> call, string node) : Stream
{
    private ReadOnlyMemory<byte> _current;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_current.IsEmpty)
        {
            try
            {
                if (!await call.ResponseStream.MoveNext(cancellationToken))
                {
                    return 0;
                }
            }
            catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled || !cancellationToken.IsCancellationRequested)
            {
                throw new NodeOperationException(node, "etcd snapshot", $"etcd broke off the snapshot stream: {ex.StatusCode}: {ex.Status.Detail}", ex);
            }

            _current = call.ResponseStream.Current.Blob.Memory;
        }

        var count = Math.Min(buffer.Length, _current.Length);
        _current[..count].CopyTo(buffer);
        _current = _current[count..];
        return count;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            call.Dispose();
        }

        base.Dispose(disposing);
    }
}
