using ClusterBackup.Signing;

namespace ClusterBackup.Catalog;

/// <summary>
/// The newest complete set whose signature the policy accepts (null when none does; <paramref name="Unsigned"/>
/// when the policy let it in without a signature), and the newer complete sets it refused, newest first.
/// </summary>
internal sealed record NewestSigned(CatalogSet? Newest, bool Unsigned, IReadOnlyList<RefusedSet> Refused);

/// <summary>A complete set whose signature the policy refused, and why (cluster, set, what is wrong, what to do).</summary>
internal sealed record RefusedSet(CatalogSet Set, string Reason, SignatureProblem Problem);

/// <summary>
/// Which set the reports of a cluster (<c>certs</c>, the daemon's gauges) come from: the newest
/// one a trusted key signed.
/// </summary>
internal sealed partial class BackupCatalog
{
    /// <summary>
    /// Walks a scan's complete sets from the newest, checking each one's signature as
    /// <see cref="OpenSignedAsync"/> does, until one is accepted: a set forged by someone who can
    /// write to storage neither makes a cluster look backed up nor hides its certificates' expiry.
    /// <paramref name="known"/> gives what an earlier walk found for a set with these very manifest
    /// bytes (true: accepted; false: refused, skipped and not listed again), so that its signature
    /// is not read again; null: check it.
    /// </summary>
    public async Task<NewestSigned> NewestSignedAsync(
        IReadOnlyList<StoredSet> scan, SignaturePolicy policy, Func<CatalogSet, bool?>? known = null, CancellationToken cancellationToken = default)
    {
        var refused = new List<RefusedSet>();
        foreach (var set in scan.Where(s => s.Complete).Reverse().Select(s => s.ToCatalogSet()))
        {
            switch (known?.Invoke(set))
            {
                case true:
                    return new NewestSigned(set, false, refused);
                case false:
                    continue;
            }

            try
            {
                var signed = await OpenSignedAsync(set, policy, cancellationToken);
                return new NewestSigned(signed.Set, signed.Unsigned, refused);
            }
            catch (SetRefusedException ex)
            {
                refused.Add(new RefusedSet(set, ex.Reason, ex.Problem));
            }
        }

        return new NewestSigned(null, false, refused);
    }

    /// <summary>A refusal that also names the newest set of the scan the policy accepts: the one to use instead.</summary>
    public async Task<SetRefusedException> NamingInsteadAsync(
        string cluster, IReadOnlyList<StoredSet> scan, SignaturePolicy policy, SetRefusedException refused, CancellationToken cancellationToken)
    {
        var instead = await NewestSignedAsync(scan, policy, cancellationToken: cancellationToken);
        return new SetRefusedException(
            refused.Reason + (instead.Newest is { } newest
                ? $"; the newest set {(instead.Unsigned ? "that can be read (unsigned)" : "a trusted key signed")} is {newest.Id} (--set {newest.Id})"
                : $"; no set of cluster {cluster} is signed by a trusted key"),
            refused.Problem);
    }
}
