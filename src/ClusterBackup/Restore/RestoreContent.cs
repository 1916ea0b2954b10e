using ClusterBackup.Streams;

namespace ClusterBackup.Restore;

/// <summary>
/// The bytes an upload step sends, written into the upload as they come: small archives from memory,
/// the snapshot straight from storage as it is decrypted, decompressed and checked. A content that
/// fails its check throws at its end, so the upload fails and is undone before any member is touched.
/// </summary>
internal sealed class RestoreContent(string description, Func<Stream, CancellationToken, Task> writeTo)
{
    /// <summary>What it is, for logs and test doubles.</summary>
    public string Description { get; } = description;

    public Task WriteToAsync(Stream destination, CancellationToken cancellationToken) => writeTo(destination, cancellationToken);

    public static RestoreContent FromBytes(string description, byte[] bytes) =>
        new(description, (destination, cancellationToken) => destination.WriteAsync(bytes, cancellationToken).AsTask());

    /// <summary>
    /// One content for <paramref name="uploads"/> uploads that run at the same time, produced once:
    /// each upload waits until all have joined, then <paramref name="writeTo"/> runs once and every
    /// write goes into all of them together, at the pace of the slowest. A failure of the content or
    /// of any upload, or a cancellation of any, fails them all.
    /// </summary>
    public static RestoreContent Shared(string description, int uploads, Func<Stream, CancellationToken, Task> writeTo) =>
        new(description, new SharedWrite(uploads, writeTo).JoinAsync);

    public override string ToString() => Description;

    private sealed class SharedWrite(int uploads, Func<Stream, CancellationToken, Task> writeTo)
    {
        private readonly Lock _lock = new();
        private readonly List<(Stream Destination, CancellationToken Token)> _joined = [];
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task JoinAsync(Stream destination, CancellationToken cancellationToken)
        {
            bool last;
            lock (_lock)
            {
                if (_joined.Count == uploads)
                {
                    throw new InvalidOperationException($"a content shared by {uploads} uploads was asked for once more");
                }

                _joined.Add((destination, cancellationToken));
                last = _joined.Count == uploads;
            }

            // Cancelled while the others are awaited, or while writing: every upload stops.
            await using var registration = cancellationToken.Register(() => _done.TrySetCanceled(cancellationToken));
            if (last && !_done.Task.IsCompleted)
            {
                using var any = CancellationTokenSource.CreateLinkedTokenSource(_joined.Select(j => j.Token).ToArray());
                try
                {
                    await writeTo(new WriteOnlyStream((data, ct) => new ValueTask(Task.WhenAll(_joined.Select(j => j.Destination.WriteAsync(data, ct).AsTask())))), any.Token);
                    _done.TrySetResult();
                }
                catch (Exception ex)
                {
                    _done.TrySetException(ex);
                }
            }

            await _done.Task;
        }
    }
}
