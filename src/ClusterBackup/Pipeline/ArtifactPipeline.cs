using System.IO.Pipelines;
using ClusterBackup.Encryption;
using ClusterBackup.Streams;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace ClusterBackup.Pipeline;

/// <summary>The zstd level, and its worker threads (0: compress on the calling thread).</summary>
internal sealed record CompressionSettings(int Level, int Workers = 0);

/// <summary>Plain and stored size and SHA-256 of one artifact, as the manifest records them.</summary>
internal sealed record ArtifactDigest(long PlainSize, string PlainSha256, long StoredSize, string StoredSha256);

/// <summary>
/// Backup: source → SHA-256 of the plain bytes → zstd → age (unless disabled) → SHA-256 of the
/// stored bytes → destination. Restore: the same in reverse, every size and hash checked.
/// Streaming end to end: memory is a few buffers whatever the artifact's size.
/// </summary>
internal static partial class ArtifactPipeline
{
    public const string Compression = "zstd";
    private const int BufferSize = 128 * 1024;

    /// <summary>The input of one zstd worker's job.</summary>
    private const int JobSize = 2 * 1024 * 1024;

    /// <summary>How far the reader stage may run ahead of compression.</summary>
    public const int ReadAhead = 4 * 1024 * 1024;

    /// <summary>Compresses and, with recipients, encrypts <paramref name="source"/> into <paramref name="destination"/>.</summary>
    public static async Task<ArtifactDigest> CopyAsync(
        Stream source, Stream destination, int compressionLevel, IReadOnlyList<AgeRecipient> recipients, CancellationToken cancellationToken = default) =>
        await CopyAsync(source, destination, new CompressionSettings(compressionLevel), recipients, NoTransferProgress.Instance, string.Empty, cancellationToken);

    /// <summary>
    /// Two stages that overlap: a reader task pulls the source (a network stream) into a bounded
    /// pipe (<see cref="ReadAhead"/>), while this task hashes, compresses (zstd, with worker threads),
    /// encrypts, hashes again and writes into <paramref name="destination"/>, whose own uploads
    /// overlap in turn (see the store). A failure or cancellation in either stage stops the other.
    /// </summary>
    public static async Task<ArtifactDigest> CopyAsync(
        Stream source, Stream destination, CompressionSettings compression, IReadOnlyList<AgeRecipient> recipients,
        ITransferProgress progress, string artifact, CancellationToken cancellationToken = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: ReadAhead, resumeWriterThreshold: ReadAhead / 2, useSynchronizationContext: false));
        var reading = Task.Run(() => ReadAsync(source, pipe.Writer, stop.Token), CancellationToken.None);
        try
        {
            using var stored = new HashingStream(destination);
            using var age = recipients.Count > 0 ? new AgeEncryptingStream(stored, recipients) : null;
            // A source that hashes what it yields (an etcd snapshot, for its trailer) is not hashed twice.
            var digesting = source as IDigestingSource;
            HashingStream? plain;
            await using (var compressor = new CompressionStream((Stream?)age ?? stored, compression.Level, BufferSize, leaveOpen: true))
            {
                if (compression.Workers > 0)
                {
                    // Each worker holds its job's input and output: small jobs keep memory flat.
                    compressor.SetParameter(ZSTD_cParameter.ZSTD_c_nbWorkers, compression.Workers);
                    compressor.SetParameter(ZSTD_cParameter.ZSTD_c_jobSize, JobSize);
                }

                var sink = new ProgressStream(compressor, progress, artifact);
                plain = digesting is null ? new HashingStream(sink) : null;
                await using (var input = pipe.Reader.AsStream())
                {
                    await input.CopyToAsync((Stream?)plain ?? sink, BufferSize, stop.Token);
                }

                progress.Complete(artifact);
            }

            if (age is not null)
            {
                await age.FinishAsync(stop.Token);
            }

            using (plain)
            {
                await stored.FlushAsync(stop.Token);
                await reading;
                var (plainCount, plainSha256) = plain is null ? digesting!.Digest : (plain.Count, plain.Sha256Hex());
                return new ArtifactDigest(plainCount, plainSha256, stored.Count, stored.Sha256Hex());
            }
        }
        catch
        {
            await stop.CancelAsync();
            await pipe.Reader.CompleteAsync();
            await reading;
            throw;
        }
    }

    /// <summary>The reader stage: never throws; a failure of the source reaches the other stage through the pipe.</summary>
    private static async Task ReadAsync(Stream source, PipeWriter writer, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var read = await source.ReadAsync(writer.GetMemory(BufferSize), cancellationToken);
                if (read == 0)
                {
                    break;
                }

                writer.Advance(read);
                if ((await writer.FlushAsync(cancellationToken)).IsCompleted)
                {
                    break; // the other stage stopped
                }
            }

            await writer.CompleteAsync();
        }
        catch (Exception ex)
        {
            await writer.CompleteAsync(ex);
        }
    }

    /// <summary>
    /// Decrypts (when <paramref name="identities"/> are given) and decompresses a stored artifact
    /// into <paramref name="destination"/>, and checks it against what the manifest expects.
    /// Throws <see cref="ArtifactCheckException"/> naming what does not match.
    /// </summary>
    public static Task ExtractAsync(
        Stream stored, Stream destination, ArtifactDigest expected, IReadOnlyList<AgeIdentity>? identities, CancellationToken cancellationToken = default) =>
        ExtractAsync(stored, destination, expected, identities, NoTransferProgress.Instance, string.Empty, cancellationToken);

    public static async Task ExtractAsync(
        Stream stored, Stream destination, ArtifactDigest expected, IReadOnlyList<AgeIdentity>? identities,
        ITransferProgress progress, string artifact, CancellationToken cancellationToken = default)
    {
        using var storedHash = new HashingStream(stored);
        using var plainHash = new HashingStream(new ProgressStream(destination, progress, artifact));
        try
        {
            await using var age = identities is null ? null : await AgeDecryptingStream.OpenAsync(storedHash, identities, cancellationToken);
            await using var decompressor = new DecompressionStream((Stream?)age ?? storedHash, BufferSize, checkEndOfStream: true, leaveOpen: true);
            await decompressor.CopyToAsync(plainHash, BufferSize, cancellationToken);
            progress.Complete(artifact);
        }
        catch (AgeException ex) when (ex.Failure == AgeFailure.NoMatch)
        {
            throw new ArtifactCheckException(ArtifactCheckFailure.WrongIdentity, ex.Message, ex);
        }
        catch (AgeException ex)
        {
            throw Damaged(ex.Message, ex);
        }
        catch (ZstdException ex)
        {
            throw Damaged($"not a valid zstd stream: {ex.Message}", ex);
        }
        catch (EndOfStreamException ex)
        {
            throw Damaged("the zstd stream is truncated", ex);
        }

        if (storedHash.Count != expected.StoredSize || storedHash.Sha256Hex() != expected.StoredSha256)
        {
            throw Damaged($"the stored object ({storedHash.Count} bytes, SHA-256 {storedHash.Sha256Hex()}) differs from the manifest ({expected.StoredSize} bytes, {expected.StoredSha256})");
        }

        if (plainHash.Count != expected.PlainSize || plainHash.Sha256Hex() != expected.PlainSha256)
        {
            throw new ArtifactCheckException(ArtifactCheckFailure.PlainMismatch,
                $"the restored content ({plainHash.Count} bytes, SHA-256 {plainHash.Sha256Hex()}) differs from the manifest ({expected.PlainSize} bytes, {expected.PlainSha256})");
        }

        static ArtifactCheckException Damaged(string message, Exception? inner = null) =>
            new(ArtifactCheckFailure.StoredDamaged, message, inner);
    }
}

internal enum ArtifactCheckFailure
{
    /// <summary>The stored object is not what was written: damaged, truncated or replaced.</summary>
    StoredDamaged,

    /// <summary>The stored object decodes, but not to the bytes that were backed up.</summary>
    PlainMismatch,

    /// <summary>The given identities cannot decrypt it.</summary>
    WrongIdentity,
}

internal sealed class ArtifactCheckException(ArtifactCheckFailure failure, string message, Exception? inner = null) : Exception(message, inner)
{
    public ArtifactCheckFailure Failure { get; } = failure;
}
