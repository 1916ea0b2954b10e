namespace ClusterBackup.Storage;

/// <summary>
/// Uploads that were started and neither committed nor aborted (a crash, a killed process, a
/// server without abort): S3 multipart uploads, or a directory's temp files. Prune removes the
/// stale ones. A store that cannot list them throws <see cref="StorageException"/>.
/// </summary>
internal interface IIncompleteUploads
{
    IAsyncEnumerable<IncompleteUpload> ListIncompleteUploadsAsync(string prefix, CancellationToken cancellationToken = default);

    Task AbortAsync(IncompleteUpload upload, CancellationToken cancellationToken = default);
}

internal sealed record IncompleteUpload(string Key, string UploadId, DateTimeOffset Initiated);
