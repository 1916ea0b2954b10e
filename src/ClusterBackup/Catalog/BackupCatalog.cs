using System.Text.Json;
using ClusterBackup.Configuration;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Catalog;

/// <summary>A complete backup set: its id and its manifest.</summary>
internal sealed record CatalogSet(SetId Id, SetManifest Manifest);

/// <summary>A set as the listing shows it: complete when it has a manifest; its objects and their total size.</summary>
internal sealed record StoredSet(SetId Id, bool Complete, long StoredBytes, DateTimeOffset LastModified, IReadOnlyList<string> Keys);

/// <summary>
/// The storage layout: <c>{Prefix}/{Cluster}/{SetId}/{artifact}</c>, <c>manifest.json</c> last.
/// A set without a manifest is incomplete and never listed.
/// </summary>
internal sealed partial class BackupCatalog(IBackupStore store, StorageOptions options, ILogger<BackupCatalog> logger)
{
    public const string LatestSelector = "latest";

    public string ClusterPrefix(string cluster) => StorageKeys.Join(options.Prefix, cluster) + "/";

    public string SetPrefix(string cluster, SetId id) => ClusterPrefix(cluster) + id + "/";

    public string ArtifactKey(string cluster, SetId id, string name) => SetPrefix(cluster, id) + name;

    /// <summary>Complete sets of a cluster, oldest first. A manifest that cannot be read is reported and skipped.</summary>
    public async Task<IReadOnlyList<CatalogSet>> ListSetsAsync(string cluster, CancellationToken cancellationToken = default)
    {
        var complete = (await ScanAsync(cluster, cancellationToken)).Where(s => s.Complete).ToList();
        var manifests = new SetManifest?[complete.Count];
        await Parallel.ForEachAsync(
            Enumerable.Range(0, complete.Count),
            new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            async (i, ct) => manifests[i] = await TryReadManifestAsync(cluster, complete[i].Id, ct));
        return complete.Zip(manifests)
            .Where(pair => pair.Second is not null)
            .Select(pair => new CatalogSet(pair.First.Id, pair.Second!))
            .ToList();
    }

    /// <summary>
    /// Every set under the cluster's prefix, complete or not, oldest first, from one listing (no
    /// object is read): what retention plans with.
    /// </summary>
    public async Task<IReadOnlyList<StoredSet>> ScanAsync(string cluster, CancellationToken cancellationToken = default)
    {
        var prefix = ClusterPrefix(cluster);
        var sets = new SortedDictionary<SetId, List<StoredObject>>();
        await foreach (var item in store.ListAsync(prefix, cancellationToken))
        {
            var rest = item.Key[prefix.Length..].Split('/');
            if (rest.Length == 2 && SetId.TryParse(rest[0], out var id))
            {
                if (!sets.TryGetValue(id, out var objects))
                {
                    sets[id] = objects = [];
                }

                objects.Add(item);
            }
        }

        return sets.Select(pair => new StoredSet(
                pair.Key,
                pair.Value.Any(o => o.Key.EndsWith("/" + SetManifest.FileName, StringComparison.Ordinal)),
                pair.Value.Sum(o => o.Size),
                pair.Value.Max(o => o.LastModified),
                pair.Value.Select(o => o.Key).ToList()))
            .ToList();
    }

    /// <summary>A complete set by id, or the newest with <c>latest</c>; throws <see cref="SetNotFoundException"/>.</summary>
    public async Task<CatalogSet> FindSetAsync(string cluster, string selector, CancellationToken cancellationToken = default)
    {
        var sets = await ListSetsAsync(cluster, cancellationToken);
        if (selector == LatestSelector)
        {
            return sets.Count > 0 ? sets[^1] : throw new SetNotFoundException($"cluster {cluster} has no complete backup set in {store.Describe(ClusterPrefix(cluster))}");
        }

        if (!SetId.TryParse(selector, out var id))
        {
            throw new SetNotFoundException($"'{selector}' is not a set id (like 20261125T221408Z) or 'latest'");
        }

        return sets.FirstOrDefault(s => s.Id == id)
            ?? throw new SetNotFoundException($"cluster {cluster} has no complete set {selector} (cluster-backup list --cluster {cluster} shows the sets)");
    }

    /// <summary>Whether anything at all is stored under the set's prefix (complete or not).</summary>
    public async Task<bool> SetExistsAsync(string cluster, SetId id, CancellationToken cancellationToken = default)
    {
        await foreach (var _ in store.ListAsync(SetPrefix(cluster, id), cancellationToken))
        {
            return true;
        }

        return false;
    }

    public async Task WriteManifestAsync(SetManifest manifest, CancellationToken cancellationToken = default)
    {
        SetId.TryParse(manifest.SetId, out var id);
        await using var upload = await store.StartUploadAsync(ArtifactKey(manifest.Cluster, id, SetManifest.FileName), cancellationToken);
        await upload.Content.WriteAsync(manifest.ToJson(), cancellationToken);
        await upload.CommitAsync(cancellationToken);
    }

    /// <summary>Removes every object of a set, the manifest first so a half-removed set is never listed.</summary>
    public async Task DeleteSetAsync(string cluster, SetId id, CancellationToken cancellationToken = default)
    {
        var keys = new List<string>();
        await foreach (var item in store.ListAsync(SetPrefix(cluster, id), cancellationToken))
        {
            keys.Add(item.Key);
        }

        await DeleteSetAsync(new StoredSet(id, Complete: true, 0, DateTimeOffset.MinValue, keys), cancellationToken);
    }

    /// <summary>Removes the objects a scan found for a set, the manifest first.</summary>
    public async Task DeleteSetAsync(StoredSet set, CancellationToken cancellationToken = default)
    {
        foreach (var key in set.Keys.OrderBy(k => k.EndsWith("/" + SetManifest.FileName, StringComparison.Ordinal) ? 0 : 1))
        {
            await store.DeleteAsync(key, cancellationToken);
        }
    }

    /// <summary>The manifest of a set; null if it is missing or unreadable (which is logged).</summary>
    public async Task<SetManifest?> TryReadManifestAsync(string cluster, SetId id, CancellationToken cancellationToken)
    {
        var key = ArtifactKey(cluster, id, SetManifest.FileName);
        try
        {
            await using var stream = await store.OpenReadAsync(key, cancellationToken);
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken);
            var manifest = SetManifest.FromJson(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
            if (manifest.Cluster != cluster || manifest.SetId != id.ToString())
            {
                LogUnreadableManifest(store.Describe(key), "it names another cluster or set");
                return null;
            }

            return manifest;
        }
        catch (StoredObjectNotFoundException)
        {
            return null; // removed while listing
        }
        catch (JsonException ex)
        {
            LogUnreadableManifest(store.Describe(key), ex.Message);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipping set: its manifest {Location} cannot be read: {Reason}")]
    private partial void LogUnreadableManifest(string location, string reason);
}

/// <summary>The set asked for is not in storage (or not complete).</summary>
internal sealed class SetNotFoundException(string message) : Exception(message);

/// <summary>Object names within a set: <c>.zst</c>, and <c>.zst.age</c> when encrypted.</summary>
internal sealed record ArtifactNames(bool Encrypted)
{
    private string Suffix => Encrypted ? ".zst.age" : ".zst";

    public string EtcdSnapshot => "etcd.db" + Suffix;

    public string Pki(string node) => $"pki-{node}.tar{Suffix}";

    public string Manifests(string node) => $"manifests-{node}.tar{Suffix}";
}
