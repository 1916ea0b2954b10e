using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Retention;

/// <summary>One set in a prune plan: what retention decided, and why.</summary>
internal sealed record PlannedSet(StoredSet Set, bool Keep, IReadOnlyList<string> Reasons);

/// <summary>What prune keeps and removes for a cluster. <see cref="UploadsNote"/> says why open uploads were not checked.</summary>
internal sealed record PrunePlan(
    ClusterSettings Cluster,
    DateTimeOffset Now,
    IReadOnlyList<PlannedSet> Sets,
    IReadOnlyList<IncompleteUpload> StaleUploads,
    string? UploadsNote)
{
    public IEnumerable<PlannedSet> Removed => Sets.Where(s => !s.Keep);
}

internal sealed record PruneResult(int RemovedSets, long RemovedBytes, int AbortedUploads);

/// <summary>
/// Applies the retention policy to what is stored: complete sets (a readable manifest) by
/// <see cref="RetentionPlanner"/>; incomplete sets (no manifest) and open uploads once older than
/// the cluster's grace period, which protects a run still in progress. A damaged set (a manifest
/// that cannot be read) is kept and counted by no rule, so it never costs an intact set its place.
/// The newest set a trusted key signed is always kept: sets forged in storage may still count for
/// the rules (checking them all would read every set's signature at each prune), but never cost
/// the cluster its newest genuine one. Deletion removes a set's manifest first; the kept sets'
/// manifests are then stored in one object
/// (<see cref="BackupCatalog.WriteStoredCacheAsync"/>), after a backup and after a <c>prune</c> run by hand.
/// </summary>
internal sealed partial class PruneService(
    BackupCatalog catalog, IBackupStore store, SigningSettings signing, TimeProvider time, ILogger<PruneService> logger)
{
    public async Task<PrunePlan> PlanAsync(ClusterSettings cluster, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        var stored = await catalog.ScanAsync(cluster.Name, cancellationToken);
        var signed = await catalog.NewestSignedAsync(stored, signing.ReadPolicy(), cancellationToken: cancellationToken);
        var decisions = RetentionPlanner.Plan(stored.Where(s => s.Complete).Select(s => s.Id), cluster.Retention, cluster.TimeZone, signed.Newest?.Id)
            .ToDictionary(d => d.Id);
        var sets = stored.Select(set =>
            {
                if (set.Complete)
                {
                    var decision = decisions[set.Id];
                    return new PlannedSet(set, decision.Keep, decision.Reasons);
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
    /// What a run that died left: every set without a manifest and every open upload of the cluster,
    /// whatever their age. Only for a caller holding the cluster's run lock (no run is writing).
    /// </summary>
    public async Task<PrunePlan> PlanLeftoversAsync(ClusterSettings cluster, CancellationToken cancellationToken = default)
    {
        var plan = await PlanAsync(cluster with { IncompleteGrace = TimeSpan.Zero }, cancellationToken);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Open uploads of {Cluster} were not checked: {Reason}")]
    private partial void LogUploadsNotListed(string cluster, string reason);
}
