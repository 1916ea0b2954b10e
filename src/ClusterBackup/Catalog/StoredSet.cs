namespace ClusterBackup.Catalog;

/// <summary>A complete backup set: its id and its manifest.</summary>
internal sealed record CatalogSet(SetId Id, SetManifest Manifest)
{
    /// <summary>The manifest's bytes as stored, which its signature covers.</summary>
    public ReadOnlyMemory<byte> ManifestBytes { get; init; }

    /// <summary>The signature's bytes when a manifest cache held them (with the MD5 the listing gives now); null: read them from storage.</summary>
    public byte[]? SignatureBytes { get; init; }

    /// <summary>False when the set's listing named no signature: the set is not signed, and nothing is read.</summary>
    public bool SignatureListed { get; init; } = true;
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

    /// <summary>The MD5 the listing gives as the signature's ETag, if any: what the manifest caches keep its bytes under.</summary>
    public string? SignatureMd5 { get; init; }

    /// <summary>The signature's bytes, known to have <see cref="SignatureMd5"/>: from a manifest cache, or read for retention.</summary>
    public byte[]? SignatureBytes { get; init; }

    /// <summary>Whether the set's listing names a signature: without one the set is not signed.</summary>
    public bool SignatureListed => Keys.Any(k => k.EndsWith("/" + SetManifest.SignatureFileName, StringComparison.Ordinal));

    /// <summary>A complete set as the catalog hands it out.</summary>
    public CatalogSet ToCatalogSet() => new(Id, Manifest!)
    {
        ManifestBytes = ManifestBytes,
        SignatureBytes = SignatureBytes,
        SignatureListed = SignatureListed,
    };

    /// <summary>The entries the manifest caches keep of the set (MD5 → bytes): its manifest, and its signature when known.</summary>
    public IEnumerable<KeyValuePair<string, byte[]>> CacheEntries()
    {
        if (Complete && ManifestMd5 is not null && ManifestBytes is not null)
        {
            yield return new(ManifestMd5, ManifestBytes);
            if (SignatureMd5 is not null && SignatureBytes is not null)
            {
                yield return new(SignatureMd5, SignatureBytes);
            }
        }
    }
}
