using System.IO.Pipelines;
using ClusterBackup.Encryption;
using ClusterBackup.Streams;
using ZstdSharp;

namespace ClusterBackup.Pipeline;

internal static partial class ArtifactPipeline
{
    /// <summary>How far each stage of the check may run ahead of the next: the bytes come compressed, and a stage's pace is steady.</summary>
    private const int CheckAhead = 1024 * 1024;

    /// <summary>
    /// Stores <paramref name="compressed"/>, zstd its source already compressed (an exec-mode node),
    /// as it comes: encrypted with recipients, hashed, written into <paramref name="destination"/>.
    /// A second stage decompresses the same bytes through <paramref name="check"/> (etcd's trailer)
    /// and hashes the plain content, on another core: what is stored is what was checked, byte for
    /// byte, and nothing is compressed twice. A failure or cancellation in either stage stops the
    /// other; the check's own failure is the one thrown.
    /// </summary>
    public static async Task<ArtifactDigest> CopyCompressedAsync(
        Stream compressed, Func<Stream, Stream> check, Stream destination, IReadOnlyList<AgeRecipient> recipients,
        ITransferProgress progress, string artifact, CancellationToken cancellationToken = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pipe = CheckPipe();
        var checking = Task.Run(() => DecompressAsync(pipe.Reader, check, progress, artifact, stop.Token), CancellationToken.None);
        try
        {
            using var stored = new HashingStream(destination);
            using var age = recipients.Count > 0 ? new AgeEncryptingStream(stored, recipients) : null;
            var output = (Stream?)age ?? stored;
            var buffer = new byte[BufferSize];
            int read;
            while ((read = await compressed.ReadAsync(buffer, stop.Token)) > 0)
            {
                var chunk = buffer.AsMemory(0, read);
                if ((await pipe.Writer.WriteAsync(chunk, stop.Token)).IsCompleted)
                {
                    break; // the check stopped early: awaiting it throws why
                }

                await output.WriteAsync(chunk, stop.Token);
            }

            await pipe.Writer.CompleteAsync();
            var plain = await checking;
            if (age is not null)
            {
                await age.FinishAsync(stop.Token);
            }

            await stored.FlushAsync(stop.Token);
            return new ArtifactDigest(plain.Count, plain.Sha256Hex, stored.Count, stored.Sha256Hex());
        }
        catch
        {
            await stop.CancelAsync();
            await pipe.Writer.CompleteAsync();
            await Task.WhenAny(checking); // stopped; the first failure is the one thrown
            throw;
        }
    }

    /// <summary>
    /// The check stage: decompresses what the pipe brings on one thread, and passes the plain bytes
    /// through the check and the hash on another (each takes about as long as the other).
    /// </summary>
    private static async Task<(long Count, string Sha256Hex)> DecompressAsync(
        PipeReader reader, Func<Stream, Stream> check, ITransferProgress progress, string artifact, CancellationToken cancellationToken)
    {
        await using var input = reader.AsStream();
        await using var decompressor = new DecompressionStream(input, BufferSize, checkEndOfStream: true, leaveOpen: true);
        var decompressed = CheckPipe();
        var decompressing = Task.Run(() => ReadAsync(decompressor, decompressed.Writer, cancellationToken), CancellationToken.None);
        try
        {
            await using var plain = check(decompressed.Reader.AsStream());
            var digesting = plain as IDigestingSource;
            using var hash = digesting is null ? new HashingStream(Stream.Null) : null;
            await plain.CopyToAsync(new ProgressStream((Stream?)hash ?? Stream.Null, progress, artifact), BufferSize, cancellationToken);
            progress.Complete(artifact);
            return digesting?.Digest ?? (hash!.Count, hash.Sha256Hex());
        }
        catch (ZstdException ex)
        {
            throw new InvalidDataException($"the compressed stream it sent is not valid zstd: {ex.Message}", ex);
        }
        catch (EndOfStreamException ex)
        {
            throw new InvalidDataException("the compressed stream it sent is truncated", ex);
        }
        finally
        {
            // The decompressor is disposed only once its stage has stopped.
            await decompressed.Reader.CompleteAsync();
            await decompressing;
        }
    }

    private static Pipe CheckPipe() =>
        new(new PipeOptions(pauseWriterThreshold: CheckAhead, resumeWriterThreshold: CheckAhead / 2, useSynchronizationContext: false));
}
