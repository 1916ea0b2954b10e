using System.Text.Json;

namespace ClusterBackup.Catalog;

/// <summary>
/// The catalog's side of the local manifest cache (<see cref="ManifestCache"/>): what a scan finds
/// in it, and what retention adds to it (the signatures it read). Signatures are kept beside the
/// manifests, under the MD5 the listing gives as their ETag, and are checked as if read from storage.
/// </summary>
internal sealed partial class BackupCatalog
{
    /// <summary>What the manifest caches (local, and the stored copy) keep of sets: each manifest and known signature under its MD5.</summary>
    private static Dictionary<string, byte[]> CacheEntries(IEnumerable<StoredSet> sets) =>
        sets.SelectMany(s => s.CacheEntries()).DistinctBy(e => e.Key, StringComparer.Ordinal).ToDictionary(StringComparer.Ordinal);

    /// <summary>A manifest cache's bytes under an MD5 (a signature's: parsed as a manifest, and not one).</summary>
    private static byte[]? Cached(Dictionary<string, ParsedManifest> entries, string md5) => entries.TryGetValue(md5, out var entry) ? entry.Bytes : null;

    /// <summary>The cluster's cached manifests (and signatures), each parsed, under the MD5 of its bytes.</summary>
    private Dictionary<string, ParsedManifest> ParseCached(string cluster) =>
        cache.Load(cluster).AsParallel().ToDictionary(entry => entry.Key, entry => ParsedManifest.Parse(entry.Value), StringComparer.Ordinal);

    /// <summary>A manifest parsed from its bytes, or why they are not one.</summary>
    private readonly record struct ParsedManifest(SetManifest? Manifest, byte[] Bytes, string? Damage)
    {
        public static ParsedManifest Parse(byte[] bytes)
        {
            if (bytes.AsSpan().TrimStart(" \t\r\n"u8) is not [(byte)'{', ..])
            {
                return new(null, bytes, "not a valid manifest: not a JSON object"); // a signature, kept in the same caches
            }

            try
            {
                return new(SetManifest.FromJson(bytes), bytes, null);
            }
            catch (JsonException ex)
            {
                return new(null, bytes, $"not a valid manifest: {ex.Message}");
            }
        }

        /// <summary>The manifest checked to name the set it was stored as; or why it cannot be read.</summary>
        public (SetManifest? Manifest, byte[]? Bytes, string? Damage) Of(string cluster, SetId id) =>
            Manifest is null ? (null, null, Damage)
            : Manifest.Cluster != cluster || Manifest.SetId != id.ToString() ? (null, null, $"it names cluster {Manifest.Cluster} set {Manifest.SetId}")
            : (Manifest, Bytes, null);
    }
}
