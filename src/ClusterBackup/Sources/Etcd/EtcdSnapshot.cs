namespace ClusterBackup.Sources.Etcd;

/// <summary>What the agent records about the member a snapshot was taken from.</summary>
internal sealed record EtcdFacts(
    string Node,
    string Mode,
    string? MemberName,
    ulong MemberId,
    ulong ClusterId,
    long Revision,
    long KeyCount,
    string Version,
    long DbSizeBytes);

/// <summary>
/// An open snapshot stream: etcd's database followed by its 32-byte SHA-256 trailer, exactly as
/// <c>etcdctl snapshot save</c> writes it, or that file compressed by the node (<see cref="CompressedCheck"/>). Disposing releases the tunnel or removes the node's temp file.
/// </summary>
internal sealed class EtcdSnapshot(Stream content, EtcdFacts facts, Func<ValueTask> release) : IAsyncDisposable
{
    public Stream Content { get; } = content;

    public EtcdFacts Facts { get; } = facts;

    /// <summary>
    /// Set when <see cref="Content"/> is zstd the node compressed: wraps the bytes it decompresses
    /// to in the same checks (etcd's trailer) a plain snapshot gets.
    /// </summary>
    public Func<Stream, Stream>? CompressedCheck { get; init; }

    public async ValueTask DisposeAsync()
    {
        await Content.DisposeAsync();
        await release();
    }
}

/// <summary>Takes a snapshot from the etcd member on a node reached over SSH.</summary>
internal interface IEtcdSnapshotSource
{
    Task<EtcdSnapshot> OpenAsync(Ssh.NodeSession session, CancellationToken cancellationToken = default);
}
