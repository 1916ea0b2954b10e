namespace ClusterBackup.Streams;

/// <summary>
/// A source stream that counts and SHA-256-hashes every byte it yields, for a check of its own (etcd's
/// snapshot trailer): the pipeline takes its digest instead of hashing the same bytes a second time.
/// </summary>
internal interface IDigestingSource
{
    /// <summary>The bytes yielded and their lowercase hex SHA-256; valid once the stream has ended cleanly.</summary>
    (long Count, string Sha256Hex) Digest { get; }
}
