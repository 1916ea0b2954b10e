using ClusterBackup.Storage;
using ClusterBackup.Streams;
using Microsoft.Extensions.Logging;
using ZstdSharp;

namespace ClusterBackup.Catalog;

/// <summary>
/// A copy of a cluster's manifests kept in storage beside its sets,
/// <c>{Prefix}/{Cluster}/manifests.cache.zst</c>: the local cache's format, zstd-compressed. Each
/// backup writes it after its retention scan; a scan that lacks many of the listed manifests (a
/// workstation or user that never scanned the cluster, sets written by another agent) reads it once
/// instead of each manifest. Its entries are trusted exactly as the local cache's are: only under
/// the MD5 the listing gives a manifest now, and only when their bytes have it. So it never decides
/// what a scan sees: a stale, damaged or forged copy costs the reads it would have saved.
/// </summary>
internal sealed partial class StoredManifestCache(IBackupStore store, ILogger<StoredManifestCache> logger)
{
    public const string Name = "manifests.cache.zst";

    /// <summary>
    /// Whether a scan that lacks <paramref name="missing"/> of the <paramref name="listed"/>
    /// manifests reads the stored copy (one GET of all of them) rather than each: when it lacks at
    /// least four, and at least a sixteenth of them.
    /// </summary>
    public static bool WorthReading(int missing, int listed) => missing >= 4 && missing * 16L >= listed;

    /// <summary>Neither the stored object nor what it decompresses to is read past this.</summary>
    private const long MaxBytes = 256L * 1024 * 1024;

    private const int Level = 3;

    /// <summary>
    /// The entries of the stored copy under <paramref name="key"/> whose MD5 <paramref name="wanted"/>
    /// accepts, each as <paramref name="parse"/> makes it while the next are decompressed and checked;
    /// empty when the copy cannot be read.
    /// </summary>
    public async Task<Dictionary<string, T>> ReadAsync<T>(string key, Func<string, bool> wanted, Func<byte[], T> parse, CancellationToken cancellationToken)
    {
        try
        {
            using var compressed = new MemoryStream();
            await using (var stored = new Bounded(await store.OpenReadAsync(key, cancellationToken)))
            {
                await stored.CopyToAsync(compressed, cancellationToken);
            }

            compressed.Position = 0;
            using var plain = new BufferedStream(new Bounded(new DecompressionStream(compressed, leaveOpen: false)), 64 * 1024);
            return ManifestCache.ReadEntries(plain, wanted).AsParallel().WithCancellation(cancellationToken)
                .ToDictionary(entry => entry.Key, entry => parse(entry.Value), StringComparer.Ordinal);
        }
        catch (StoredObjectNotFoundException)
        {
            return new Dictionary<string, T>(StringComparer.Ordinal); // none written yet, or a directory store
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Whatever went wrong, the scan reads the manifests one by one.
            LogUnusable(store.Describe(key), ex is AggregateException all ? all.InnerExceptions[0].Message : ex.Message);
            return new Dictionary<string, T>(StringComparer.Ordinal);
        }
    }

    /// <summary>Replaces the stored copy under <paramref name="key"/> with the given entries (MD5 → bytes).</summary>
    public async Task WriteAsync(string key, IReadOnlyDictionary<string, byte[]> entries, CancellationToken cancellationToken)
    {
        using var compressed = new MemoryStream();
        using (var zstd = new CompressionStream(compressed, Level, leaveOpen: true))
        {
            ManifestCache.WriteEntries(zstd, entries);
        }

        await using var upload = await store.StartUploadAsync(key, cancellationToken);
        await upload.Content.WriteAsync(compressed.GetBuffer().AsMemory(0, (int)compressed.Length), cancellationToken);
        await upload.CommitAsync(cancellationToken);
    }

    /// <summary>Fails a read that goes past <see cref="MaxBytes"/>.</summary>
    private sealed class Bounded(Stream inner) : ObservedReadStream(inner)
    {
        private long _read;

        protected override void Observe(ReadOnlySpan<byte> data)
        {
            if ((_read += data.Length) > MaxBytes)
            {
                throw new InvalidDataException($"larger than {MaxBytes / 1024 / 1024} MiB");
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stored manifest cache {Location} not used: {Reason}")]
    private partial void LogUnusable(string location, string reason);
}
