namespace ClusterBackup.Restore;

/// <summary>A member as the assessment found it.</summary>
internal sealed record MemberHealth(string Name, bool Reachable, bool Healthy, string Detail);

/// <summary>What a restore will do, and why; <see cref="Refusal"/> set when it will not.</summary>
internal sealed record RestoreDecision(IReadOnlyList<string> Members, string Reason, string? Refusal);

/// <summary>
/// Which members to restore, from their health (PROCEDURE.md, with DESIGN.md's departure): not HA,
/// the member; HA with quorum, nothing (replace failed members instead) unless members are named
/// and forced; HA without quorum, every member from the same snapshot.
/// </summary>
internal static class RestorePlanner
{
    public static RestoreDecision Decide(IReadOnlyList<MemberHealth> members, IReadOnlyCollection<string> requested, bool force)
    {
        var unknown = requested.Where(r => members.All(m => m.Name != r)).ToList();
        if (unknown.Count > 0)
        {
            return Refuse($"--member {string.Join(", ", unknown)} is not a control plane of this cluster ({string.Join(", ", members.Select(m => m.Name))})");
        }

        var unreachable = members.Where(m => !m.Reachable).Select(m => m.Name).ToList();
        var healthy = members.Count(m => m.Healthy);
        var all = members.Select(m => m.Name).ToList();
        if (members.Count == 1)
        {
            return unreachable.Count > 0
                ? Refuse($"{unreachable[0]} cannot be reached over SSH: {members[0].Detail}")
                : new RestoreDecision(all, $"not HA: restoring the only member, {all[0]}" + (healthy == 1 ? " (it is healthy: its data is replaced by the set's)" : string.Empty), null);
        }

        var quorum = healthy > members.Count / 2;
        if (quorum)
        {
            if (requested.Count > 0 && force)
            {
                return new RestoreDecision(requested.ToList(),
                    $"quorum holds ({healthy} of {members.Count} healthy), but --force restores {string.Join(", ", requested)} as asked; they start a new cluster from the snapshot", null);
            }

            return Refuse($"quorum holds ({healthy} of {members.Count} members healthy), so etcd keeps serving: replace the failed members instead " +
                          "(etcdctl member remove, then member add and a fresh data dir), which keeps every write since the backup. " +
                          "To restore anyway, name the members with --member and add --force");
        }

        if (unreachable.Count > 0)
        {
            return Refuse($"quorum is lost and every member must be restored, but {string.Join(", ", unreachable)} cannot be reached over SSH");
        }

        if (requested.Count > 0 && requested.Count != members.Count)
        {
            return Refuse($"quorum is lost ({healthy} of {members.Count} healthy): every member must be restored from the same snapshot, not only {string.Join(", ", requested)}");
        }

        return new RestoreDecision(all,
            $"quorum is lost ({healthy} of {members.Count} healthy): restoring every member, survivors included, from the same snapshot " +
            "with the full --initial-cluster, because a restore starts a new cluster that members with other data cannot join", null);
    }

    private static RestoreDecision Refuse(string reason) => new([], string.Empty, reason);
}
