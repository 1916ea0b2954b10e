namespace ClusterBackup.Catalog;

/// <summary>A complete backup set: its id and its manifest.</summary>
internal sealed record CatalogSet(SetId Id, SetManifest Manifest)
{
    /// <summary>The manifest's bytes as stored, which its signature covers.</summary>
    public ReadOnlyMemory<byte> ManifestBytes { get; init; }
}

/// <summary>What a set's objects say of it.</summary>
internal enum SetState
{
    /// <summary>Its manifest was read: the set can be verified and restored.</summary>
    Complete,

    /// <summary>No manifest: a run that failed, was killed or is still going.</summary>
    Incomplete,

    /// <summary>A manifest that cannot be read: never counted as a backup, never removed by a rule.</summary>
    Damaged,
}

/// <summary>
/// A set as stored: its state, its objects and their total size; the manifest when complete, the
/// reason when damaged.
/// </summary>
internal sealed record StoredSet(
    SetId Id, SetState State, long StoredBytes, DateTimeOffset LastModified, IReadOnlyList<string> Keys,
    SetManifest? Manifest = null, string? Damage = null, byte[]? ManifestBytes = null)
{
    public bool Complete => State == SetState.Complete;

    /// <summary>The MD5 of <see cref="ManifestBytes"/> when the listing gave it as the manifest's ETag: what the manifest caches keep it under.</summary>
    public string? ManifestMd5 { get; init; }

    /// <summary>A complete set as the catalog hands it out.</summary>
    public CatalogSet ToCatalogSet() => new(Id, Manifest!) { ManifestBytes = ManifestBytes };
}
