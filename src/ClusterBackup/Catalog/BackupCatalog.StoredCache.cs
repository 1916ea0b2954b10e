using Microsoft.Extensions.Logging;

namespace ClusterBackup.Catalog;

/// <summary>The catalog's side of the stored manifest cache (<see cref="StoredManifestCache"/>): when a scan reads it, and retention (a backup's or <c>prune</c>'s) writes it.</summary>
internal sealed partial class BackupCatalog
{
    /// <summary>
    /// After retention (a backup's, or <c>prune</c> run by hand): replaces the cluster's stored manifest cache with the manifests of
    /// the sets kept, and the signatures retention read of them (see <see cref="StoredManifestCache"/>). Not written where no listing names a
    /// manifest by its MD5 (a directory; SSE-KMS), nor under Object Lock, where each write would be
    /// a version kept for the lock's days. Best effort: a failure is logged, and the next backup or prune writes it.
    /// </summary>
    public async Task WriteStoredCacheAsync(string cluster, IEnumerable<StoredSet> kept, CancellationToken cancellationToken = default)
    {
        var entries = CacheEntries(kept);

        if (entries.Count == 0 || options.ObjectLock.Mode is not null)
        {
            return;
        }

        var key = ClusterPrefix(cluster) + StoredManifestCache.Name;
        try
        {
            await storedCache.WriteAsync(key, entries, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogStoredCacheNotWritten(store.Describe(key), ex.Message);
        }
    }

    /// <summary>
    /// The stored cache's manifests of the listed sets that the local cache lacks, each parsed, when
    /// it lacks enough of them (<see cref="StoredManifestCache.WorthReading"/>); none otherwise.
    /// </summary>
    private async Task<Dictionary<string, ParsedManifest>> ReadStoredCacheAsync(
        string cluster, StoredSet[] sets, Dictionary<SetId, string?> manifestMd5s, Dictionary<SetId, string> signatureMd5s,
        Dictionary<string, ParsedManifest> cached, CancellationToken cancellationToken)
    {
        var listed = sets.Where(s => s.Complete).Select(s => manifestMd5s[s.Id]).OfType<string>().ToList();
        var missing = listed.Where(md5 => !cached.ContainsKey(md5)).ToHashSet(StringComparer.Ordinal);
        if (!StoredManifestCache.WorthReading(missing.Count, listed.Count))
        {
            return [];
        }

        missing.UnionWith(sets.Where(s => s.Complete && signatureMd5s.ContainsKey(s.Id)).Select(s => signatureMd5s[s.Id]).Where(md5 => !cached.ContainsKey(md5)));
        return await storedCache.ReadAsync(ClusterPrefix(cluster) + StoredManifestCache.Name, missing.Contains, ParsedManifest.Parse, cancellationToken);
    }

    /// <summary>The whole stored cache, each manifest parsed: for a scan without a local cache.</summary>
    private async Task<Dictionary<string, ParsedManifest>?> ReadStoredCacheEarlyAsync(string cluster, CancellationToken cancellationToken) =>
        await storedCache.ReadAsync(ClusterPrefix(cluster) + StoredManifestCache.Name, _ => true, ParsedManifest.Parse, cancellationToken);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The stored manifest cache {Location} was not written: {Reason}; the next backup or prune writes it")]
    private partial void LogStoredCacheNotWritten(string location, string reason);
}
