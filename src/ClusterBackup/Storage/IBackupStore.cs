namespace ClusterBackup.Storage;

/// <summary>
/// Where backup sets live: an S3 bucket or a directory. Keys are '/'-separated relative paths.
/// Every implementation passes the same conformance suite (tests/…/Storage/BackupStoreConformance.cs).
/// </summary>
internal interface IBackupStore
{
    /// <summary>Where an object lives, for messages: <c>s3://bucket/key</c> or a file path.</summary>
    string Describe(string key);

    /// <summary>
    /// Starts writing an object. Nothing is visible under <paramref name="key"/> until
    /// <see cref="IObjectUpload.CommitAsync"/> returns; disposing an upload that was not committed
    /// aborts it. Committing replaces an existing object of the same key.
    /// </summary>
    Task<IObjectUpload> StartUploadAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes a small object only if nothing is stored under <paramref name="key"/>; returns false,
    /// writing nothing, when something is. Exclusive on the filesystem (a hard link, which fails if
    /// the name exists) and on S3 servers that honour <c>If-None-Match: *</c>; a server that ignores
    /// the header replaces the object, which callers must allow for (README: "Failure behaviour").
    /// </summary>
    Task<bool> CreateExclusiveAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default);

    /// <summary>Reads an object. Throws <see cref="StoredObjectNotFoundException"/> when it does not exist.</summary>
    Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Every object whose key starts with <paramref name="prefix"/>, in ordinal key order, over any number of pages.</summary>
    IAsyncEnumerable<StoredObject> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>Removes an object; removing one that does not exist is not an error.</summary>
    Task DeleteAsync(string key, CancellationToken cancellationToken = default);
}

/// <summary>An object being written; see <see cref="IBackupStore.StartUploadAsync"/>.</summary>
internal interface IObjectUpload : IAsyncDisposable
{
    /// <summary>Write-only, not seekable. Disposing it does not commit.</summary>
    Stream Content { get; }

    Task CommitAsync(CancellationToken cancellationToken = default);
}

/// <summary>An object as listed; <paramref name="ETag"/> as S3 gives it (quoted), null for a directory.</summary>
internal sealed record StoredObject(string Key, long Size, DateTimeOffset LastModified, string? ETag = null);

/// <summary>The store cannot do what was asked; the message names the store and what to check.</summary>
internal class StorageException(string message, Exception? inner = null) : Exception(message, inner);

internal sealed class StoredObjectNotFoundException(string location, Exception? inner = null)
    : StorageException($"{location} does not exist", inner);

internal static class StorageKeys
{
    /// <summary>Joins key segments with '/', skipping empty ones (an empty Prefix).</summary>
    public static string Join(params string[] segments) =>
        string.Join('/', segments.SelectMany(s => s.Split('/', StringSplitOptions.RemoveEmptyEntries)));
}
