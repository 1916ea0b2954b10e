using ClusterBackup.Configuration;
using ClusterBackup.Signing;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Catalog;

/// <summary>
/// The storage layout: <c>{Prefix}/{Cluster}/{SetId}/{artifact}</c>, <c>manifest.json</c> last.
/// A set without a manifest is incomplete and never listed; one whose manifest cannot be read is
/// damaged, and reported wherever sets are listed.
/// </summary>
internal sealed partial class BackupCatalog(
    IBackupStore store, StorageOptions options, ManifestCache cache, StoredManifestCache storedCache, ILogger<BackupCatalog> logger)
{
    public const string LatestSelector = "latest";

    public string ClusterPrefix(string cluster) => StorageKeys.Join(options.Prefix, cluster) + "/";

    public string SetPrefix(string cluster, SetId id) => ClusterPrefix(cluster) + id + "/";

    public string ArtifactKey(string cluster, SetId id, string name) => SetPrefix(cluster, id) + name;

    /// <summary>Where a set's manifest lives, for messages.</summary>
    public string DescribeManifest(string cluster, SetId id) => store.Describe(ArtifactKey(cluster, id, SetManifest.FileName));

    /// <summary>The complete sets of a scan, oldest first.</summary>
    public static IReadOnlyList<CatalogSet> CompleteSets(IEnumerable<StoredSet> scan) =>
        scan.Where(s => s.Complete).Select(s => s.ToCatalogSet()).ToList();

    /// <summary>
    /// Every set under the cluster's prefix, oldest first, from one listing and a read of each
    /// manifest: complete, incomplete or damaged. What list, verify and retention start from.
    /// </summary>
    public async Task<IReadOnlyList<StoredSet>> ScanAsync(string cluster, CancellationToken cancellationToken = default)
    {
        var prefix = ClusterPrefix(cluster);
        // Without a local cache (a workstation that never scanned the cluster) every manifest is
        // missing: the stored copy is asked for first, and parsed while the listing is on its way.
        var early = cache.Exists(cluster) ? Task.FromResult<Dictionary<string, ParsedManifest>?>(null) : ReadStoredCacheEarlyAsync(cluster, cancellationToken);
        // The cache is read and its manifests parsed while the listing is on its way (README, Performance).
        var parsing = Task.Run(() => ParseCached(cluster), CancellationToken.None);
        var objects = new SortedDictionary<SetId, List<StoredObject>>();
        // The sets with a manifest, each with the MD5 its listing gives (S3's ETag), if any.
        var manifestMd5s = new Dictionary<SetId, string?>();
        var signatureMd5s = new Dictionary<SetId, string>();
        var storedCacheListed = false;
        await foreach (var item in store.ListAsync(prefix, cancellationToken))
        {
            storedCacheListed |= item.Key == prefix + StoredManifestCache.Name;
            if (InSet(prefix, item.Key) is (var id, var name))
            {
                if (!objects.TryGetValue(id, out var list))
                {
                    objects[id] = list = [];
                }

                list.Add(item);
                if (name == SetManifest.FileName)
                {
                    manifestMd5s[id] = ManifestCache.Md5OfETag(item.ETag);
                }
                else if (name == SetManifest.SignatureFileName && ManifestCache.Md5OfETag(item.ETag) is { } signatureMd5)
                {
                    signatureMd5s[id] = signatureMd5;
                }
            }
        }

        var sets = objects.Select(pair => new StoredSet(
                pair.Key,
                manifestMd5s.ContainsKey(pair.Key) ? SetState.Complete : SetState.Incomplete,
                pair.Value.Sum(o => o.Size),
                pair.Value.Max(o => o.LastModified),
                pair.Value.Select(o => o.Key).ToList()))
            .ToArray();
        // Only a listing that names manifests by their MD5 can use the cache (not a directory store's).
        var cached = manifestMd5s.Values.Any(md5 => md5 is not null) ? await parsing : new Dictionary<string, ParsedManifest>();
        var stored = await early
            ?? (storedCacheListed ? await ReadStoredCacheAsync(cluster, sets, manifestMd5s, signatureMd5s, cached, cancellationToken) : new Dictionary<string, ParsedManifest>());
        var kept = new System.Collections.Concurrent.ConcurrentDictionary<string, byte[]>(StringComparer.Ordinal);
        var (fromCache, fromStored, fromStorage) = (0, 0, 0);
        await Parallel.ForEachAsync(
            Enumerable.Range(0, sets.Length).Where(i => sets[i].Complete),
            new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                var md5 = manifestMd5s[sets[i].Id];
                var local = md5 is not null && cached.TryGetValue(md5, out var parsed) ? parsed.Of(cluster, sets[i].Id) : default;
                var hit = local.Manifest is null && md5 is not null && stored.TryGetValue(md5, out parsed) ? parsed.Of(cluster, sets[i].Id) : local;
                Interlocked.Increment(ref hit.Manifest is null ? ref fromStorage : ref local.Manifest is null ? ref fromStored : ref fromCache);

                var (manifest, read, damage) = hit.Manifest is not null ? hit : await ReadManifestAsync(cluster, sets[i].Id, ct);
                var known = manifest is not null && md5 is not null && (hit.Manifest is not null || ManifestCache.Md5Hex(read) == md5);
                var signatureMd5 = signatureMd5s.GetValueOrDefault(sets[i].Id);
                var signature = signatureMd5 is null ? null : Cached(cached, signatureMd5) ?? Cached(stored, signatureMd5);
                if (known)
                {
                    kept[md5!] = read!;
                    if (signature is not null)
                    {
                        kept[signatureMd5!] = signature;
                    }
                }

                sets[i] = manifest is not null
                    ? sets[i] with { Manifest = manifest, ManifestBytes = read, ManifestMd5 = known ? md5 : null, SignatureMd5 = signatureMd5, SignatureBytes = signature }
                    : damage is not null ? sets[i] with { State = SetState.Damaged, Damage = damage }
                    : sets[i] with { State = SetState.Incomplete }; // removed while listing
            });
        if (kept.Count != cached.Count || kept.Keys.Any(md5 => !cached.ContainsKey(md5)))
        {
            cache.Save(cluster, kept);
        }

        LogScanned(cluster, sets.Length, fromCache, fromStorage, fromStored);
        foreach (var damaged in sets.Where(s => s.State == SetState.Damaged))
        {
            LogDamagedManifest(DescribeManifest(cluster, damaged.Id), damaged.Damage!);
        }

        return sets;
    }

    /// <summary>
    /// The newest readable manifest of the cluster, from one listing and as few manifest reads as it
    /// takes (a damaged newest one is passed over): for decisions that need only the newest set.
    /// </summary>
    public async Task<SetManifest?> NewestManifestAsync(string cluster, CancellationToken cancellationToken = default)
    {
        var prefix = ClusterPrefix(cluster);
        var complete = new SortedSet<SetId>();
        await foreach (var item in store.ListAsync(prefix, cancellationToken))
        {
            if (InSet(prefix, item.Key) is (var id, SetManifest.FileName))
            {
                complete.Add(id);
            }
        }

        foreach (var id in complete.Reverse())
        {
            if ((await ReadManifestAsync(cluster, id, cancellationToken)).Manifest is { } manifest)
            {
                return manifest;
            }
        }

        return null;
    }

    /// <summary>
    /// A complete set of a scan by id, or the newest complete one with <c>latest</c>; throws
    /// <see cref="SetNotFoundException"/>, naming a damaged set as such.
    /// </summary>
    public CatalogSet Find(string cluster, IReadOnlyList<StoredSet> sets, string selector)
    {
        if (selector == LatestSelector)
        {
            return sets.LastOrDefault(s => s.Complete) is { } newest
                ? newest.ToCatalogSet()
                : throw new SetNotFoundException($"cluster {cluster} has no complete backup set in {store.Describe(ClusterPrefix(cluster))}");
        }

        if (!SetId.TryParse(selector, out var id))
        {
            throw new SetNotFoundException($"'{selector}' is not a set id (like 20261125T221408Z) or 'latest'");
        }

        return sets.FirstOrDefault(s => s.Id == id) switch
        {
            { Complete: true } found => found.ToCatalogSet(),
            { State: SetState.Damaged } damaged => throw new SetNotFoundException(
                $"cluster {cluster}: set {selector} is damaged: {DescribeManifest(cluster, id)} cannot be read: {damaged.Damage}"),
            _ => throw new SetNotFoundException($"cluster {cluster} has no complete set {selector} (cluster-backup list --cluster {cluster} shows the sets)"),
        };
    }

    /// <summary>The keys stored under a set's prefix (complete or not).</summary>
    public async Task<IReadOnlyList<string>> SetKeysAsync(string cluster, SetId id, CancellationToken cancellationToken = default)
    {
        var keys = new List<string>();
        await foreach (var item in store.ListAsync(SetPrefix(cluster, id), cancellationToken))
        {
            keys.Add(item.Key);
        }

        return keys;
    }

    /// <summary>The key of a set's manifest signature.</summary>
    public string SignatureKey(string cluster, SetId id) => ArtifactKey(cluster, id, SetManifest.SignatureFileName);

    /// <summary>
    /// Commits a set: with a key, first its signature over the manifest's exact bytes, then the
    /// manifest, each only if the set has none yet (exclusively where the store can), so a committed
    /// set is never replaced. Throws <see cref="SetTakenException"/> or <see cref="StorageException"/> otherwise.
    /// </summary>
    public async Task WriteManifestAsync(SetManifest manifest, SigningKey? key, CancellationToken cancellationToken = default)
    {
        SetId.TryParse(manifest.SetId, out var id);
        var bytes = manifest.ToJson();
        if (key is not null)
        {
            var signatureKey = SignatureKey(manifest.Cluster, id);
            if (!await store.CreateExclusiveAsync(signatureKey, SshSignature.Sign(bytes, key), cancellationToken))
            {
                throw new SetTakenException($"{store.Describe(signatureKey)} already exists: another run committed set {manifest.SetId}");
            }
        }

        var manifestKey = ArtifactKey(manifest.Cluster, id, SetManifest.FileName);
        if (!await store.CreateExclusiveAsync(manifestKey, bytes, cancellationToken))
        {
            throw new SetTakenException($"{store.Describe(manifestKey)} already exists: another run committed set {manifest.SetId}");
        }
    }

    /// <summary>Removes the objects a scan found for a set, the manifest first so a half-removed set is never listed.</summary>
    public Task DeleteSetAsync(StoredSet set, CancellationToken cancellationToken = default) => DeleteKeysAsync(set.Keys, cancellationToken);

    /// <summary>Removes the given objects, a manifest first.</summary>
    public async Task DeleteKeysAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        foreach (var key in keys.OrderBy(k => k.EndsWith("/" + SetManifest.FileName, StringComparison.Ordinal) ? 0 : 1))
        {
            await store.DeleteAsync(key, cancellationToken);
        }
    }

    private async Task<byte[]?> ReadBytesAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await store.OpenReadAsync(key, cancellationToken);
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken);
            return buffer.ToArray();
        }
        catch (StoredObjectNotFoundException)
        {
            return null;
        }
    }

    /// <summary>A set's manifest and its bytes, or why it cannot be read; all null when it is gone.</summary>
    private async Task<(SetManifest? Manifest, byte[]? Bytes, string? Damage)> ReadManifestAsync(string cluster, SetId id, CancellationToken cancellationToken)
    {
        if (await ReadBytesAsync(ArtifactKey(cluster, id, SetManifest.FileName), cancellationToken) is not { } bytes)
        {
            return (null, null, null);
        }

        return ParsedManifest.Parse(bytes).Of(cluster, id);
    }

    /// <summary>The set and the object's name of a key listed under a cluster's prefix; null for a key of no set.</summary>
    private static (SetId Set, string Name)? InSet(string clusterPrefix, string key) =>
        key[clusterPrefix.Length..].Split('/') is [var set, var name] && SetId.TryParse(set, out var id) ? (id, name) : null;

    [LoggerMessage(Level = LogLevel.Debug,
        Message = "Scanned cluster {Cluster}: {Sets} sets, {CachedManifests} manifests from the local cache, {ReadManifests} read from storage one by one, {StoredCacheManifests} from the stored cache")]
    private partial void LogScanned(string cluster, int sets, int cachedManifests, int readManifests, int storedCacheManifests);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Damaged set: its manifest {Location} cannot be read: {Reason}")]
    private partial void LogDamagedManifest(string location, string reason);
}

/// <summary>A manifest exists already where a run was about to commit: the set is another run's, whose objects must stay.</summary>
internal sealed class SetTakenException(string message) : StorageException(message);

/// <summary>The set asked for is not in storage (or not complete).</summary>
internal sealed class SetNotFoundException(string message) : Exception(message);

/// <summary>Object names within a set: <c>.zst</c>, and <c>.zst.age</c> when encrypted.</summary>
internal sealed record ArtifactNames(bool Encrypted)
{
    private string Suffix => Encrypted ? ".zst.age" : ".zst";

    public string EtcdSnapshot => "etcd.db" + Suffix;

    public string Pki(string node) => $"pki-{node}.tar{Suffix}";

    public string Manifests(string node) => $"manifests-{node}.tar{Suffix}";

    public string Kubeconfigs(string node) => $"kubeconfigs-{node}.tar{Suffix}";

    public string EncryptionConfig(string node) => $"encryption-config-{node}.tar{Suffix}";
}
