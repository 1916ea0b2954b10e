using ClusterBackup.Catalog;
using ClusterBackup.Retention;
using ClusterBackup.Signing;

namespace ClusterBackup.Tests.Retention;

public sealed class PrunePlanTests
{
    [Fact]
    public void Refused_sets_are_counted_when_kept_newer_than_the_newest_accepted_set_and_their_signature_is_wrong_or_untrusted()
    {
        var plan = new PrunePlan(null!, DateTimeOffset.UnixEpoch, [
            Planned("20261201T000000Z", keep: true, SignatureProblem.Mismatch), // older than the newest accepted set
            Planned("20261202T000000Z", keep: true, null), // the newest accepted set
            Planned("20261203T000000Z", keep: true, SignatureProblem.Mismatch),
            Planned("20261204T000000Z", keep: true, SignatureProblem.Untrusted),
            Planned("20261205T000000Z", keep: true, SignatureProblem.NotSigned), // not signed: written before signing, not forged
            Planned("20261206T000000Z", keep: false, SignatureProblem.Mismatch), // removed
        ], [], null);

        Assert.Equal(2, plan.RefusedNewer);
        Assert.Equal(0, (plan with { Sets = plan.Sets.Take(2).ToList() }).RefusedNewer);
        Assert.Equal(3, (plan with { Sets = plan.Sets.Where(s => s.Refused is not null).ToList() }).RefusedNewer); // none accepted: every wrong or untrusted one
    }

    private static PlannedSet Planned(string id, bool keep, SignatureProblem? refused)
    {
        Assert.True(SetId.TryParse(id, out var setId));
        return new PlannedSet(new StoredSet(setId, SetState.Complete, 1, DateTimeOffset.UnixEpoch, []), keep, []) { Refused = refused };
    }
}
