using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Signing;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Retention;

/// <summary>One set in a prune plan: what retention decided, and why; for a set it checked and refused, what is wrong with its signature.</summary>
internal sealed record PlannedSet(StoredSet Set, bool Keep, IReadOnlyList<string> Reasons)
{
    public SignatureProblem? Refused { get; init; }
}

/// <summary>What prune keeps and removes for a cluster. <see cref="UploadsNote"/> says why open uploads were not checked.</summary>
internal sealed record PrunePlan(
    ClusterSettings Cluster,
    DateTimeOffset Now,
    IReadOnlyList<PlannedSet> Sets,
    IReadOnlyList<IncompleteUpload> StaleUploads,
    string? UploadsNote)
{
    public IEnumerable<PlannedSet> Removed => Sets.Where(s => !s.Keep);

    /// <summary>
    /// The kept sets newer than the newest one whose signature is accepted, whose signature is wrong
    /// or untrusted (not merely absent): forged in storage, or signed by a key not trusted. What the
    /// daemon's <c>cluster_backup_refused_sets</c> shows, as its seeding from storage counts them.
    /// </summary>
    public int RefusedNewer
    {
        get
        {
            var kept = Sets.Where(s => s.Keep && s.Set.Complete).ToList();
            var newest = kept.Where(s => s.Refused is null).Select(s => (SetId?)s.Set.Id).Max();
            return kept.Count(s => s.Refused is { } problem && problem != SignatureProblem.NotSigned && (newest is null || s.Set.Id.CompareTo(newest.Value) > 0));
        }
    }
}

internal sealed record PruneResult(int RemovedSets, long RemovedBytes, int AbortedUploads);

/// <summary>
/// Applies the retention policy to what is stored: complete sets (a readable manifest) by
/// <see cref="RetentionPlanner"/>; incomplete sets (no manifest) and open uploads once older than
/// the cluster's grace period, which protects a run still in progress. A damaged set (a manifest
/// that cannot be read) is kept and counted by no rule, so it never costs an intact set its place.
/// A set whose signature is refused counts for the rules as stored, but never costs a signed set
/// its place (see <see cref="RetentionPlanner"/>): the signature of every set the plan keeps is
/// read, and a refused one planned again without it. Deletion removes a set's manifest first; the
/// kept sets' manifests are then stored in one object
/// (<see cref="BackupCatalog.WriteStoredCacheAsync"/>), after a backup and after a <c>prune</c> run by hand.
/// </summary>
internal sealed partial class PruneService(
    BackupCatalog catalog, IBackupStore store, SigningSettings signing, TimeProvider time, ILogger<PruneService> logger)
{
    /// <summary>What the plan says of a kept set whose signature is refused.</summary>
    private const string RefusedNote = "its signature is refused: it counts for the rules, but costs no signed set its place";

    public Task<PrunePlan> PlanAsync(ClusterSettings cluster, CancellationToken cancellationToken = default) =>
        PlanAsync(cluster, signatures: true, cancellationToken);

    private async Task<PrunePlan> PlanAsync(ClusterSettings cluster, bool signatures, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var stored = await catalog.ScanAsync(cluster.Name, cancellationToken);
        var (decisions, refused, scan) = signatures
            ? await DecideAsync(cluster, stored, cancellationToken)
            : (RetentionPlanner.Plan(stored.Where(s => s.Complete).Select(s => s.Id), cluster.Retention, cluster.TimeZone).ToDictionary(d => d.Id), [], stored);
        stored = scan;
        var sets = stored.Select(set =>
            {
                if (set.Complete)
                {
                    var decision = decisions[set.Id];
                    var problem = refused.TryGetValue(set.Id, out var refusal) ? refusal.Problem : (SignatureProblem?)null;
                    return new PlannedSet(set, decision.Keep, decision.Keep && problem is not null ? [.. decision.Reasons, RefusedNote] : decision.Reasons)
                    {
                        Refused = problem,
                    };
                }

                if (set.State == SetState.Damaged)
                {
                    // Never counted by a keep rule, never removed by one: an operator decides.
                    return new PlannedSet(set, Keep: true, [$"damaged, not counted by the policy: its manifest cannot be read ({set.Damage}); inspect it, then remove it by hand"]);
                }

                var age = now - set.LastModified;
                var hours = $"incomplete, last written {age.TotalHours:0.#}h ago";
                return age > cluster.IncompleteGrace
                    ? new PlannedSet(set, Keep: false, [hours])
                    : new PlannedSet(set, Keep: true, [$"{hours}: may be a run in progress (grace {cluster.IncompleteGrace.TotalHours:0}h)"]);
            })
            .OrderByDescending(p => p.Set.Id)
            .ToList();

        // A set written to within the grace period may be a run in progress (its reservation marker
        // is its first object): its open uploads are never stale, whatever date the server gives them.
        var active = stored.Where(set => now - set.LastModified <= cluster.IncompleteGrace)
            .Select(set => catalog.SetPrefix(cluster.Name, set.Id))
            .ToList();
        var (uploads, note) = await StaleUploadsAsync(cluster, now, active, cancellationToken);
        return new PrunePlan(cluster, now, sets, uploads, note);
    }

    /// <summary>
    /// The rules' decisions for the complete sets, and the sets whose signature is refused (with why):
    /// the signature of every set a plan keeps is checked, and while one is refused the plan is made
    /// again without it. Sets that no plan keeps are never checked: leaving them out would not change
    /// the plan. The scan comes back with the signatures read from storage (see <see cref="BackupCatalog.CheckSignaturesAsync"/>).
    /// </summary>
    private async Task<(Dictionary<SetId, RetentionDecision> Decisions, Dictionary<SetId, SetRefusedException> Refused, IReadOnlyList<StoredSet> Scan)> DecideAsync(
        ClusterSettings cluster, IReadOnlyList<StoredSet> scan, CancellationToken cancellationToken)
    {
        var complete = scan.Where(s => s.Complete).Select(s => s.Id).ToList();
        var policy = signing.ReadPolicy();
        var verdicts = new Dictionary<SetId, SetRefusedException?>(); // null: accepted
        var read = 0;
        IReadOnlyList<RetentionDecision> decisions;
        while (true)
        {
            decisions = RetentionPlanner.Plan(complete, cluster.Retention, cluster.TimeZone, verdicts.Where(v => v.Value is not null).Select(v => v.Key).ToHashSet());
            var toCheck = decisions.Where(d => d.Keep && !verdicts.ContainsKey(d.Id)).Select(d => d.Id).ToList();
            if (toCheck.Count == 0)
            {
                break;
            }

            var checks = await catalog.CheckSignaturesAsync(cluster.Name, scan, toCheck, policy, cancellationToken);
            (scan, read) = (checks.Scan, read + checks.Read);
            foreach (var (id, refusal) in checks.Verdicts)
            {
                verdicts[id] = refusal;
                if (refusal is not null && refusal.Problem != SignatureProblem.NotSigned)
                {
                    LogRefused(cluster.Name, id.ToString(), refusal.Reason);
                }
            }
        }

        LogSignaturesChecked(cluster.Name, verdicts.Count, read);
        var refused = verdicts.Where(v => v.Value is not null).ToDictionary(v => v.Key, v => v.Value!);
        if (refused.Values.Count(r => r.Problem == SignatureProblem.NotSigned) is > 0 and var unsigned)
        {
            LogUnsigned(cluster.Name, unsigned);
        }

        return (decisions.ToDictionary(d => d.Id), refused, scan);
    }

    /// <summary>
    /// What a run that died left: every set without a manifest and every open upload of the cluster,
    /// whatever their age. Only for a caller holding the cluster's run lock (no run is writing).
    /// </summary>
    public async Task<PrunePlan> PlanLeftoversAsync(ClusterSettings cluster, CancellationToken cancellationToken = default)
    {
        var plan = await PlanAsync(cluster with { IncompleteGrace = TimeSpan.Zero }, signatures: false, cancellationToken);
        return plan with
        {
            Sets = plan.Sets.Where(s => s.Set.State == SetState.Incomplete)
                .Select(s => s with { Keep = false, Reasons = ["incomplete: left by a run that did not finish"] })
                .ToList(),
        };
    }

    public async Task<PruneResult> ApplyAsync(PrunePlan plan, CancellationToken cancellationToken = default)
    {
        var cluster = plan.Cluster.Name;
        var removed = 0;
        long bytes = 0;
        foreach (var planned in plan.Removed)
        {
            await catalog.DeleteSetAsync(planned.Set, cancellationToken);
            removed++;
            bytes += planned.Set.StoredBytes;
            LogSetRemoved(cluster, planned.Set.Id.ToString(), string.Join("; ", planned.Reasons));
        }

        var aborted = 0;
        if (plan.StaleUploads.Count > 0 && store is IIncompleteUploads uploads)
        {
            foreach (var upload in plan.StaleUploads)
            {
                await uploads.AbortAsync(upload, cancellationToken);
                aborted++;
                LogUploadAborted(cluster, upload.Key, upload.Initiated);
            }
        }

        // The stored manifest cache then names only what is left (a plan of leftovers keeps no set: nothing to write).
        await catalog.WriteStoredCacheAsync(cluster, plan.Sets.Where(s => s.Keep).Select(s => s.Set), cancellationToken);
        return new PruneResult(removed, bytes, aborted);
    }

    private async Task<(IReadOnlyList<IncompleteUpload> Uploads, string? Note)> StaleUploadsAsync(
        ClusterSettings cluster, DateTimeOffset now, IReadOnlyList<string> activeSetPrefixes, CancellationToken cancellationToken)
    {
        if (store is not IIncompleteUploads uploads)
        {
            return ([], null);
        }

        var stale = new List<IncompleteUpload>();
        try
        {
            await foreach (var upload in uploads.ListIncompleteUploadsAsync(catalog.ClusterPrefix(cluster.Name), cancellationToken))
            {
                if (now - upload.Initiated > cluster.IncompleteGrace && !activeSetPrefixes.Any(p => upload.Key.StartsWith(p, StringComparison.Ordinal)))
                {
                    stale.Add(upload);
                }
            }
        }
        catch (StorageException ex)
        {
            // Some S3-compatible servers do not implement ListMultipartUploads; sets are still pruned.
            LogUploadsNotListed(cluster.Name, ex.Message);
            return ([], $"open uploads not checked: {ex.Message}");
        }

        return (stale, null);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed set {SetId} of {Cluster}: {Reasons}")]
    private partial void LogSetRemoved(string cluster, string setId, string reasons);

    [LoggerMessage(Level = LogLevel.Information, Message = "Aborted the stale upload of {Key} of {Cluster}, started {Initiated:u}")]
    private partial void LogUploadAborted(string cluster, string key, DateTimeOffset initiated);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Set {SetId} of {Cluster} counts for retention, but costs no signed set its place: {Reason}")]
    private partial void LogRefused(string cluster, string setId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} sets of {Cluster} are not signed (written before signing existed, or their signature removed): they count for retention, but cost no signed set its place")]
    private partial void LogUnsigned(string cluster, int count);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Retention of {Cluster} checked {Checked} signatures, {Read} of them read from storage")]
    private partial void LogSignaturesChecked(string cluster, int @checked, int read);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Open uploads of {Cluster} were not checked: {Reason}")]
    private partial void LogUploadsNotListed(string cluster, string reason);
}
