using ClusterBackup.Sources.Etcd.Protocol;
using ClusterBackup.Streams;
using Grpc.Core;

namespace ClusterBackup.Sources.Etcd;

/// <summary>The blobs of a <c>Maintenance.Snapshot</c> call as one byte stream (data, then the hash message).</summary>
internal sealed class GrpcSnapshotStream(AsyncServerStreamingCall<SnapshotResponse> call, string node) : ReadOnlyStream
{
    private ReadOnlyMemory<byte> _current;

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
                throw new NodeOperationException(node, NodeStep.EtcdSnapshot, $"etcd broke off the snapshot stream: {ex.StatusCode}: {ex.Status.Detail}", ex);
            }

            _current = call.ResponseStream.Current.Blob.Memory;
        }

        var count = Math.Min(buffer.Length, _current.Length);
        _current[..count].CopyTo(buffer);
        _current = _current[count..];
        return count;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            call.Dispose();
        }

        base.Dispose(disposing);
    }
}
