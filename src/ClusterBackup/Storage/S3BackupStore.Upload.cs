using Amazon.S3.Model;
using ClusterBackup.Streams;

namespace ClusterBackup.Storage;

/// <summary>The upload half of <see cref="S3BackupStore"/>.</summary>
internal sealed partial class S3BackupStore
{
    /// <summary>
    /// Fills one part in memory while up to <c>PartsInFlight</c> earlier parts upload: a small
    /// object becomes one PutObject, a large one a multipart upload that completes only on commit
    /// and is aborted otherwise. Memory: at most (PartsInFlight + 1) parts, whatever the object's
    /// size; a writer waits while every slot is taken (a slow destination slows the source, never
    /// grows memory). The first failed part fails the upload: every later write and the commit
    /// throw it, and the parts still in flight are cancelled.
    /// </summary>
    internal sealed class S3ObjectUpload : IObjectUpload
    {
        private readonly S3BackupStore _store;
        private readonly string _key;
        private readonly SemaphoreSlim _slots;
        private readonly Stack<byte[]> _spare = new();
        private readonly List<Task> _inFlight = [];
        private readonly List<PartETag> _parts = [];
        private readonly CancellationTokenSource _partsCancel;
        private byte[] _buffer;
        private int _filled;
        private int _partCount;
        private string? _uploadId;
        private DateTime? _retainUntil;
        private Exception? _failure;
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
            _slots = new SemaphoreSlim(store._partsInFlight);
            _partsCancel = CancellationTokenSource.CreateLinkedTokenSource(lifetime);
            _buffer = NewBuffer();
            Content = new WriteOnlyStream(WriteAsync);
        }

        public Stream Content { get; }

        /// <summary>The part buffers this upload allocated, the filling one included: buffers are reused, never freed, so this is also the most it held at once.</summary>
        public int PeakBuffers { get; private set; } = 1;

        private byte[] NewBuffer() => GC.AllocateUninitializedArray<byte>(_store._partSize);

        private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_done, this);
            ThrowIfFailed();
            while (!data.IsEmpty)
            {
                var count = Math.Min(data.Length, _buffer.Length - _filled);
                data[..count].CopyTo(_buffer.AsMemory(_filled));
                _filled += count;
                data = data[count..];
                if (_filled == _buffer.Length)
                {
                    await StartPartAsync(cancellationToken);
                }
            }
        }

        /// <summary>Hands the filled buffer to a part upload once a slot is free, and takes a spare (or new) buffer.</summary>
        private async Task StartPartAsync(CancellationToken writeToken)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(writeToken, _lifetime);
            await _slots.WaitAsync(linked.Token);
            try
            {
                ThrowIfFailed();
                if (_uploadId is null)
                {
                    var initiate = new InitiateMultipartUploadRequest { BucketName = _store._bucket, Key = _key };
                    _retainUntil = _store.Protect(initiate);
                    _uploadId = (await _store._client.InitiateMultipartUploadAsync(initiate, linked.Token)).UploadId;
                }
            }
            catch (Exception ex)
            {
                _slots.Release();
                throw IsServiceError(ex) ? _store.Translate(ex, "upload", _key) : ex;
            }

            var buffer = _buffer;
            var length = _filled;
            var number = ++_partCount;
            _inFlight.Add(Task.Run(() => UploadPartAsync(number, buffer, length), CancellationToken.None));
            lock (_spare)
            {
                if (_spare.Count > 0)
                {
                    _buffer = _spare.Pop();
                }
                else
                {
                    _buffer = NewBuffer();
                    PeakBuffers++;
                }
            }

            _filled = 0;
        }

        private async Task UploadPartAsync(int number, byte[] buffer, int length)
        {
            try
            {
                var response = await _store._client.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = _store._bucket,
                    Key = _key,
                    UploadId = _uploadId,
                    PartNumber = number,
                    InputStream = new MemoryStream(buffer, 0, length, writable: false),
                    PartSize = length,
                    MD5Digest = Md5(buffer.AsSpan(0, length)),
                    UseChunkEncoding = _store._chunkedEncoding,
                }, _partsCancel.Token);
                lock (_parts)
                {
                    _parts.Add(new PartETag(number, response.ETag));
                }
            }
            catch (Exception ex)
            {
                var failure = IsServiceError(ex) ? _store.Translate(ex, "upload", _key) : ex;
                if (Interlocked.CompareExchange(ref _failure, failure, null) is null)
                {
                    await _partsCancel.CancelAsync(); // the upload failed: stop its other parts
                }
            }
            finally
            {
                lock (_spare)
                {
                    _spare.Push(buffer);
                }

                _slots.Release();
            }
        }

        private void ThrowIfFailed()
        {
            if (_failure is { } failure)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            }
        }

        public async Task CommitAsync(CancellationToken commitToken = default)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(commitToken, _lifetime);
            var cancellationToken = linked.Token;
            try
            {
                ThrowIfFailed();
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
                        await StartPartAsync(commitToken);
                    }

                    await Task.WhenAll(_inFlight).WaitAsync(cancellationToken);
                    ThrowIfFailed();
                    var completed = await _store._client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
                    {
                        BucketName = _store._bucket,
                        Key = _key,
                        UploadId = _uploadId,
                        PartETags = [.. _parts.OrderBy(p => p.PartNumber)],
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
                Release();
                return;
            }

            _done = true;
            await _partsCancel.CancelAsync();
            try
            {
                await Task.WhenAll(_inFlight); // each part records its own failure; none throws
            }
            finally
            {
                Release();
            }

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

        private void Release()
        {
            _partsCancel.Dispose();
            _slots.Dispose();
        }
    }
}
