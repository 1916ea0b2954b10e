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

    public override string ToString() => Description;
}
