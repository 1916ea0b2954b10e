using ClusterBackup.Signing;

namespace ClusterBackup.Catalog;

/// <summary>The sets of a scan whose signatures were checked (null: accepted), the scan with the signatures read from storage, and how many were.</summary>
internal sealed record SignatureChecks(IReadOnlyDictionary<SetId, SetRefusedException?> Verdicts, IReadOnlyList<StoredSet> Scan, int Read);

/// <summary>
/// A set's signature, checked before anything of the set is read: its bytes from the manifest
/// caches where they hold them, else from storage (nothing when the listing names none).
/// </summary>
internal sealed partial class BackupCatalog
{
    /// <summary>
    /// Checks a set's signature over the exact manifest bytes its manifest was read from, against the
    /// policy's trusted keys, before anything of the set is decrypted. Returns the set (an unsigned
    /// one only when the policy allows it); throws <see cref="SetRefusedException"/> otherwise.
    /// </summary>
    public async Task<SignedSet> OpenSignedAsync(CatalogSet set, SignaturePolicy policy, CancellationToken cancellationToken = default)
    {
        var (signed, refused, _) = await CheckAsync(set, policy, cancellationToken);
        return signed ?? throw refused!;
    }

    /// <summary>
    /// Checks the signatures of some sets of a scan (16 at a time), as <see cref="OpenSignedAsync"/>
    /// does, the refusals returned rather than thrown: for retention, which checks every set it keeps.
    /// A signature read from storage with the MD5 the listing gave is added to its set in the scan
    /// returned, and to the local cache, so that it is read from storage once.
    /// </summary>
    public async Task<SignatureChecks> CheckSignaturesAsync(
        string cluster, IReadOnlyList<StoredSet> scan, IEnumerable<SetId> ids, SignaturePolicy policy, CancellationToken cancellationToken = default)
    {
        var wanted = ids.ToHashSet();
        var verdicts = new System.Collections.Concurrent.ConcurrentDictionary<SetId, SetRefusedException?>();
        var read = new System.Collections.Concurrent.ConcurrentDictionary<SetId, byte[]>();
        await Parallel.ForEachAsync(
            scan.Where(s => s.Complete && wanted.Contains(s.Id)), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (set, ct) =>
            {
                var (_, refused, signature) = await CheckAsync(set.ToCatalogSet(), policy, ct);
                verdicts[set.Id] = refused;
                if (set.SignatureBytes is null && signature is not null && set.SignatureMd5 == ManifestCache.Md5Hex(signature))
                {
                    read[set.Id] = signature;
                }
            });
        if (read.IsEmpty)
        {
            return new SignatureChecks(verdicts, scan, 0);
        }

        var updated = scan.Select(s => read.TryGetValue(s.Id, out var bytes) ? s with { SignatureBytes = bytes } : s).ToList();
        cache.Save(cluster, CacheEntries(updated));
        return new SignatureChecks(verdicts, updated, read.Count);
    }

    /// <summary>The check of <see cref="OpenSignedAsync"/>, with the signature's bytes as read (null: there is none).</summary>
    private async Task<(SignedSet? Signed, SetRefusedException? Refused, byte[]? Signature)> CheckAsync(
        CatalogSet set, SignaturePolicy policy, CancellationToken cancellationToken)
    {
        var cluster = set.Manifest.Cluster;
        var signature = set.SignatureBytes ?? (set.SignatureListed ? await ReadBytesAsync(SignatureKey(cluster, set.Id), cancellationToken) : null);
        var check = SshSignature.Verify(set.ManifestBytes.Span, signature, policy.Trusted ?? AllowedSigners.Of());
        if ((check.Problem == SignatureProblem.NotSigned && policy.AllowUnsigned) || check.Valid)
        {
            // The manifest was parsed from these very bytes, and the scan checked that it names this set.
            return (new SignedSet(set, check), null, signature);
        }

        var hint = check.Problem switch
        {
            SignatureProblem.NotSigned => "; a set written before signing existed is read with --allow-unsigned",
            SignatureProblem.Untrusted when policy.Trusted is null => "; no key is trusted: set Signing:AllowedSignersFile (or Signing:KeyFile)",
            _ => "; the set may have been forged: use another set",
        };
        return (null, new SetRefusedException($"cluster {cluster}: set {set.Id}: {check.Describe()}{hint}", check.Problem!.Value), signature);
    }
}
