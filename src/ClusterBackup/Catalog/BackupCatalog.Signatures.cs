using System.Collections.Concurrent;
using ClusterBackup.Signing;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Catalog;

/// <summary>
/// The sets of a scan whose signatures were checked (null: accepted); the scan, with the signatures
/// read from storage that the manifest caches can keep; and how many signatures were read.
/// </summary>
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
        var (signed, refused) = Check(set, await SignatureOfAsync(set, cancellationToken), policy);
        return signed ?? throw refused!;
    }

    /// <summary>
    /// Checks the signatures of some sets of a scan (16 at a time), as <see cref="OpenSignedAsync"/>
    /// does, the refusals returned rather than thrown: for list, and for retention, which checks every
    /// set it keeps. A signature read from storage with the MD5 the listing gave is added to its set in
    /// the scan returned, and to the local cache, so that it is read from storage once (a directory
    /// store gives no MD5: its signatures are read at each check). A signature this machine already
    /// accepted over the same bytes and keys is not verified again (see <see cref="SignatureVerdict"/>).
    /// </summary>
    public async Task<SignatureChecks> CheckSignaturesAsync(
        string cluster, IReadOnlyList<StoredSet> scan, IEnumerable<SetId> ids, SignaturePolicy policy, CancellationToken cancellationToken = default)
    {
        var wanted = ids.ToHashSet();
        var known = policy.Trusted is null ? new HashSet<string>() : cache.LoadVerified(cluster);
        var verdicts = new ConcurrentDictionary<SetId, SetRefusedException?>();
        var read = new ConcurrentDictionary<SetId, byte[]>();
        var accepted = new ConcurrentDictionary<SetId, string>(); // the verdict of each set accepted now
        var verified = 0;
        var fetched = 0;
        await Parallel.ForEachAsync(
            scan.Where(s => s.Complete && wanted.Contains(s.Id)), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (set, ct) =>
            {
                var catalogSet = set.ToCatalogSet();
                var signature = await SignatureOfAsync(catalogSet, ct);
                var verdict = policy.Trusted is { } trusted && signature is not null ? SignatureVerdict.Of(catalogSet.ManifestBytes.Span, signature, trusted) : null;
                if (verdict is not null && known.Contains(verdict))
                {
                    verdicts[set.Id] = null;
                    accepted[set.Id] = verdict;
                }
                else
                {
                    var (signed, refused) = Check(catalogSet, signature, policy);
                    Interlocked.Increment(ref verified);
                    verdicts[set.Id] = refused;
                    if (signed is { Unsigned: false } && verdict is not null)
                    {
                        accepted[set.Id] = verdict;
                    }
                }

                if (set.SignatureBytes is null && signature is not null)
                {
                    Interlocked.Increment(ref fetched);

                    // Kept only under the MD5 the listing gave: the bytes storage held when it was made.
                    if (set.SignatureMd5 == ManifestCache.Md5Hex(signature))
                    {
                        read[set.Id] = signature;
                    }
                }
            });
        SaveVerdicts(cluster, scan, policy, known, verdicts.Keys.ToHashSet(), accepted.Values.ToHashSet(StringComparer.Ordinal));
        LogSignaturesChecked(cluster, verdicts.Count, fetched, verified);
        if (read.IsEmpty)
        {
            return new SignatureChecks(verdicts, scan, fetched);
        }

        var updated = scan.Select(s => read.TryGetValue(s.Id, out var bytes) ? s with { SignatureBytes = bytes } : s).ToList();
        cache.Save(cluster, CacheEntries(updated));
        return new SignatureChecks(verdicts, updated, fetched);
    }

    /// <summary>
    /// Keeps the verdicts of the sets accepted now, and those known before of sets not checked now
    /// that are still in the scan with the same bytes (a set checked now and accepted on a known
    /// verdict is among the accepted): written only when that changes them.
    /// </summary>
    private void SaveVerdicts(
        string cluster, IReadOnlyList<StoredSet> scan, SignaturePolicy policy, IReadOnlySet<string> known, IReadOnlySet<SetId> checkedNow, HashSet<string> accepted)
    {
        if (policy.Trusted is not { } trusted || accepted.SetEquals(known))
        {
            return;
        }

        var current = scan.Where(s => s.Complete && !checkedNow.Contains(s.Id) && s.ManifestBytes is not null && s.SignatureBytes is not null)
            .Select(s => SignatureVerdict.Of(s.ManifestBytes, s.SignatureBytes, trusted));
        var kept = known.Intersect(current, StringComparer.Ordinal).Union(accepted, StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal);
        if (!kept.SetEquals(known))
        {
            cache.SaveVerified(cluster, kept);
        }
    }

    /// <summary>A set's signature: from the manifest caches, else from storage; null when the listing names none.</summary>
    private async Task<byte[]?> SignatureOfAsync(CatalogSet set, CancellationToken cancellationToken) =>
        set.SignatureBytes ?? (set.SignatureListed ? await ReadBytesAsync(SignatureKey(set.Manifest.Cluster, set.Id), cancellationToken) : null);

    /// <summary>Verifies a set's signature over the exact bytes its manifest was read from: the set, or why it is refused.</summary>
    private static (SignedSet? Signed, SetRefusedException? Refused) Check(CatalogSet set, byte[]? signature, SignaturePolicy policy)
    {
        var check = SshSignature.Verify(set.ManifestBytes.Span, signature, policy.Trusted ?? AllowedSigners.Of());
        if ((check.Problem == SignatureProblem.NotSigned && policy.AllowUnsigned) || check.Valid)
        {
            // The manifest was parsed from these very bytes, and the scan checked that it names this set.
            return (new SignedSet(set, check), null);
        }

        var hint = check.Problem switch
        {
            SignatureProblem.NotSigned => "; a set written before signing existed is read with --allow-unsigned",
            SignatureProblem.Untrusted when policy.Trusted is null => "; no key is trusted: set Signing:AllowedSignersFile (or Signing:KeyFile)",
            _ => "; the set may have been forged: use another set",
        };
        return (null, new SetRefusedException($"cluster {set.Manifest.Cluster}: set {set.Id}: {check.Describe()}{hint}", check.Problem!.Value));
    }

    [LoggerMessage(Level = LogLevel.Debug,
        Message = "Checked {Sets} signatures of {Cluster}: {Read} read from storage, {Verified} verified, the others accepted on this machine before over the same bytes and keys")]
    private partial void LogSignaturesChecked(string cluster, int sets, int read, int verified);
}
