using ZstdSharp;

namespace ClusterBackup.Pipeline;

/// <summary>Plain and stored size and SHA-256 of one artifact, as the manifest records them.</summary>
internal sealed record ArtifactDigest(long PlainSize, string PlainSha256, long StoredSize, string StoredSha256);

/// <summary>
/// source → SHA-256 of the plain bytes → zstd → SHA-256 of the stored bytes → destination.
/// Streaming end to end: memory is a few buffers whatever the artifact's size.
/// </summary>
internal static class ArtifactPipeline
{
    public const string Compression = "zstd";
    private const int BufferSize = 128 * 1024;

    public static async Task<ArtifactDigest> CopyAsync(Stream source, Stream destination, int compressionLevel, CancellationToken cancellationToken = default)
    {
        using var stored = new HashingStream(destination);
        HashingStream plain;
        await using (var compressor = new CompressionStream(stored, compressionLevel, BufferSize, leaveOpen: true))
        {
            plain = new HashingStream(compressor);
            await source.CopyToAsync(plain, BufferSize, cancellationToken);
        }

        using (plain)
        {
            await stored.FlushAsync(cancellationToken);
            return new ArtifactDigest(plain.BytesWritten, plain.Sha256Hex(), stored.BytesWritten, stored.Sha256Hex());
        }
    }
}
