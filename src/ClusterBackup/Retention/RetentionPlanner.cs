using System.Globalization;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;

namespace ClusterBackup.Retention;

/// <summary>What the policy decided for one complete set, and why.</summary>
internal sealed record RetentionDecision(SetId Id, bool Keep, IReadOnlyList<string> Reasons);

/// <summary>
/// The retention policy as a pure function, with restic's semantics: sets newest first; for each
/// count, a set is kept when it is the newest of a calendar period (hour, day, ISO week, month,
/// year, in the cluster's time zone) not yet seen and the count is not used up; while a count is
/// left, the oldest set is kept too, which keeps the history as long as the policy allows.
/// <c>Within</c> keeps every set within that calendar duration of the newest set (not of now, so a
/// stopped backup never makes the history expire). The newest set is never removed.
/// Sets whose signature is refused (<c>refused</c>) count for the rules as stored, but never cost
/// a signed set its place: a set is kept when the rules keep it among all sets, or among the sets
/// that are not refused. So sets forged in storage (newer, or filling every period) cannot make
/// retention remove genuine ones.
/// </summary>
internal static class RetentionPlanner
{
    /// <summary>The suffix of a reason that holds only once the refused sets are left out.</summary>
    public const string AmongSigned = " (among the sets whose signature is accepted)";

    public static IReadOnlyList<RetentionDecision> Plan(IEnumerable<SetId> sets, RetentionPolicy policy, TimeZoneInfo zone, IReadOnlySet<SetId>? refused = null)
    {
        if (policy.IsEmpty)
        {
            throw new ArgumentException("an empty retention policy would remove every set", nameof(policy));
        }

        var ordered = sets.Distinct().OrderByDescending(s => s).ToList();
        var decisions = Decide(ordered, policy, zone);
        if (refused is null || !ordered.Any(refused.Contains))
        {
            return decisions;
        }

        var amongSigned = Decide(ordered.Where(s => !refused.Contains(s)).ToList(), policy, zone).ToDictionary(d => d.Id);
        return decisions
            .Select(d => d.Keep || !amongSigned.TryGetValue(d.Id, out var signed) || !signed.Keep
                ? d
                : new RetentionDecision(d.Id, true, signed.Reasons.Select(r => r + AmongSigned).ToList()))
            .ToList();
    }

    /// <summary>The rules over sets ordered newest first.</summary>
    private static List<RetentionDecision> Decide(List<SetId> ordered, RetentionPolicy policy, TimeZoneInfo zone)
    {
        var decisions = new List<RetentionDecision>(ordered.Count);
        if (ordered.Count == 0)
        {
            return decisions;
        }

        var buckets = new Bucket[]
        {
            new(policy.Last, "last", (_, nr) => nr),
            new(policy.Hourly, "hourly", (t, _) => (t.Year * 1_000_000) + (t.Month * 10_000) + (t.Day * 100) + t.Hour),
            new(policy.Daily, "daily", (t, _) => (t.Year * 10_000) + (t.Month * 100) + t.Day),
            new(policy.Weekly, "weekly", (t, _) => (ISOWeek.GetYear(t) * 100) + ISOWeek.GetWeekOfYear(t)),
            new(policy.Monthly, "monthly", (t, _) => (t.Year * 100) + t.Month),
            new(policy.Yearly, "yearly", (t, _) => t.Year),
        };
        var newest = Local(ordered[0], zone);
        var withinSince = policy.Within?.Before(newest);

        for (var nr = 0; nr < ordered.Count; nr++)
        {
            var local = Local(ordered[nr], zone);
            var reasons = new List<string>();
            if (withinSince is { } since && local > since)
            {
                reasons.Add($"within {policy.Within} of the newest");
            }

            var oldest = nr == ordered.Count - 1;
            foreach (var bucket in buckets.Where(b => b.Left != 0))
            {
                var period = bucket.PeriodOf(local, nr);
                if (period != bucket.LastPeriod)
                {
                    reasons.Add($"{bucket.Name} {Describe(bucket, local)}");
                }
                else if (oldest)
                {
                    reasons.Add($"oldest, {bucket.Name} count left");
                }
                else
                {
                    continue;
                }

                bucket.LastPeriod = period;
                if (bucket.Left > 0)
                {
                    bucket.Left--;
                }
            }

            if (nr == 0 && reasons.Count == 0)
            {
                reasons.Add("newest set");
            }

            decisions.Add(new RetentionDecision(ordered[nr], reasons.Count > 0, reasons));
        }

        return decisions;
    }

    private static DateTime Local(SetId id, TimeZoneInfo zone) => TimeZoneInfo.ConvertTime(id.StartedAt, zone).DateTime;

    private static string Describe(Bucket bucket, DateTime local) => bucket.Name switch
    {
        "last" => "set",
        "hourly" => local.ToString("yyyy-MM-dd HH'h'", CultureInfo.InvariantCulture),
        "daily" => local.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        "weekly" => string.Create(CultureInfo.InvariantCulture, $"{ISOWeek.GetYear(local)}-W{ISOWeek.GetWeekOfYear(local):00}"),
        "monthly" => local.ToString("yyyy-MM", CultureInfo.InvariantCulture),
        _ => local.ToString("yyyy", CultureInfo.InvariantCulture),
    };

    private sealed class Bucket(int count, string name, Func<DateTime, int, long> periodOf)
    {
        public int Left { get; set; } = count;

        public string Name { get; } = name;

        public long LastPeriod { get; set; } = long.MinValue;

        public long PeriodOf(DateTime local, int nr) => periodOf(local, nr);
    }
}
