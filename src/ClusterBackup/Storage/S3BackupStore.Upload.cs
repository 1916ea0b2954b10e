using Amazon.S3.Model;
using ClusterBackup.Streams;

namespace ClusterBackup.Storage;

/// <summary>The upload half of <see cref="S3BackupStore"/>.</summary>
internal sealed partial class S3BackupStore
{
    /// <summary>
    /// Buffers one part in memory; a small object becomes one PutObject, a large one a multipart
    /// upload that completes only on commit and is aborted otherwise. Memory: one part.
    /// </summary>
    private sealed class S3ObjectUpload : IObjectUpload
    {
        private readonly S3BackupStore _store;
        private readonly string _key;
        private readonly byte[] _buffer;
        private readonly List<PartETag> _parts = [];
        private int _filled;
        private string? _uploadId;
        private DateTime? _retainUntil;
        private bool _done;

        /// <summary>
        /// Cancels every request of this upload, whatever token a write carries: stream stages
        /// above (compression) may not pass theirs down.
        /// </summary>
        private readonly CancellationToken _lifetime;

        public S3ObjectUpload(S3BackupStore store, string key, CancellationToken lifetime)
        {
            _store = store;
            _key = key;
            _lifetime = lifetime;
            _buffer = GC.AllocateUninitializedArray<byte>(store._partSize);
            Content = new WriteOnlyStream(WriteAsync);
        }

        public Stream Content { get; }

        private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_done, this);
            while (!data.IsEmpty)
            {
                var count = Math.Min(data.Length, _buffer.Length - _filled);
                data[..count].CopyTo(_buffer.AsMemory(_filled));
                _filled += count;
                data = data[count..];
                if (_filled == _buffer.Length)
                {
                    await UploadPartAsync(cancellationToken);
                }
            }
        }

        private async Task UploadPartAsync(CancellationToken writeToken)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(writeToken, _lifetime);
            var cancellationToken = linked.Token;
            try
            {
                if (_uploadId is null)
                {
                    var initiate = new InitiateMultipartUploadRequest { BucketName = _store._bucket, Key = _key };
                    _retainUntil = _store.Protect(initiate);
                    _uploadId = (await _store._client.InitiateMultipartUploadAsync(initiate, cancellationToken)).UploadId;
                }

                var number = _parts.Count + 1;
                var response = await _store._client.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = _store._bucket,
                    Key = _key,
                    UploadId = _uploadId,
                    PartNumber = number,
                    InputStream = new MemoryStream(_buffer, 0, _filled, writable: false),
                    PartSize = _filled,
                    MD5Digest = Md5(_buffer.AsSpan(0, _filled)),
                    UseChunkEncoding = _store._chunkedEncoding,
                }, cancellationToken);
                _parts.Add(new PartETag(number, response.ETag));
                _filled = 0;
            }
            catch (Exception ex) when (IsServiceError(ex))
            {
                throw _store.Translate(ex, "upload", _key);
            }
        }

        public async Task CommitAsync(CancellationToken commitToken = default)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(commitToken, _lifetime);
            var cancellationToken = linked.Token;
            try
            {
                if (_uploadId is null)
                {
                    var put = new PutObjectRequest
                    {
                        BucketName = _store._bucket,
                        Key = _key,
                        InputStream = new MemoryStream(_buffer, 0, _filled, writable: false),
                        MD5Digest = Md5(_buffer.AsSpan(0, _filled)),
                        UseChunkEncoding = _store._chunkedEncoding,
                        AutoCloseStream = true,
                    };
                    _store.Protect(put);
                    await _store._client.PutObjectAsync(put, cancellationToken);
                }
                else
                {
                    if (_filled > 0)
                    {
                        await UploadPartAsync(commitToken);
                    }

                    var completed = await _store._client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
                    {
                        BucketName = _store._bucket,
                        Key = _key,
                        UploadId = _uploadId,
                        PartETags = _parts,
                    }, cancellationToken);
                    await _store.RetainAsync(_key, completed.VersionId, _retainUntil, cancellationToken);
                }

                _done = true;
            }
            catch (Exception ex) when (IsServiceError(ex))
            {
                throw _store.Translate(ex, "upload", _key);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_done)
            {
                return;
            }

            _done = true;
            if (_uploadId is null)
            {
                return;
            }

            try
            {
                await _store._client.AbortMultipartUploadAsync(_store._bucket, _key, _uploadId, CancellationToken.None);
            }
            catch (Exception ex) when (IsServiceError(ex))
            {
                _store.LogAbortFailed(_key, _uploadId, ex.Message);
            }
        }
    }
}
