using System.Globalization;
using System.Text;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Retention;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Retention;

/// <summary>The policy over generated histories, as golden tables (kept sets with their reasons), plus its invariants.</summary>
public sealed class RetentionPlannerTests
{
    private static readonly TimeZoneInfo Rome = TimeZoneInfo.FindSystemTimeZoneById("Europe/Rome");

    private static IEnumerable<SetId> Every(TimeSpan step, DateTimeOffset from, DateTimeOffset to, Func<DateTimeOffset, bool>? gap = null)
    {
        for (var t = from; t <= to; t += step)
        {
            if (gap is null || !gap(t))
            {
                yield return SetId.At(t);
            }
        }
    }

    private static string Table(IReadOnlyList<RetentionDecision> decisions, RetentionPolicy policy, TimeZoneInfo zone)
    {
        var text = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"policy: {policy}; zone: {zone.Id}; sets: {decisions.Count}; kept: {decisions.Count(d => d.Keep)}\n");
        foreach (var decision in decisions.Where(d => d.Keep))
        {
            var local = TimeZoneInfo.ConvertTime(decision.Id.StartedAt, zone).ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture);
            text.Append(CultureInfo.InvariantCulture, $"{decision.Id}  {local}  keep  {string.Join(", ", decision.Reasons)}\n");
        }

        return text.ToString();
    }

    private static void AssertInvariants(IReadOnlyList<RetentionDecision> decisions, IEnumerable<SetId> input)
    {
        Assert.Equal(input.Distinct().Count(), decisions.Count);
        Assert.True(decisions[0].Keep, "the newest set must be kept");
        Assert.Equal(decisions.Select(d => d.Id).OrderByDescending(i => i), decisions.Select(d => d.Id));
        Assert.All(decisions, d => Assert.Equal(d.Keep, d.Reasons.Count > 0));
    }

    [Fact]
    public void Hourly_for_two_years_with_gaps()
    {
        var from = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var history = Every(TimeSpan.FromHours(1), from, from.AddYears(2).AddHours(-1),
            t => (t.Month == 3 && t.Day is >= 10 and <= 20) // ten days without backups
                 || (t.DayOfWeek == DayOfWeek.Sunday && t.Hour is >= 2 and < 5) // a weekly maintenance window
                 || (t.Year == 2025 && t.Month == 12 && t.Day >= 28)).ToList(); // the newest days missing
        var policy = new RetentionPolicy(Last: 5, Hourly: 48, Daily: 14, Weekly: 8, Monthly: 24, Yearly: 5);

        var decisions = RetentionPlanner.Plan(history, policy, TimeZoneInfo.Utc);

        AssertInvariants(decisions, history);
        Assert.Equal(5, decisions.Count(d => d.Reasons.Any(r => r.StartsWith("last ", StringComparison.Ordinal))));
        Assert.Equal(14, decisions.Count(d => d.Reasons.Any(r => r.StartsWith("daily ", StringComparison.Ordinal))));
        Assert.Equal(24, decisions.Count(d => d.Reasons.Any(r => r.StartsWith("monthly ", StringComparison.Ordinal))));
        Assert.Equal(2, decisions.Count(d => d.Reasons.Any(r => r.StartsWith("yearly ", StringComparison.Ordinal))));
        Assert.Contains(decisions, d => d.Reasons.Contains("oldest, yearly count left"));
        Golden.AssertMatches("Retention/golden/hourly-two-years-with-gaps.txt", Table(decisions, policy, TimeZoneInfo.Utc));
    }

    [Fact]
    public void Daylight_saving_changes_bucket_by_local_calendar()
    {
        // Every 30 minutes across Rome's spring-forward (2025-03-30 02:00 → 03:00) and fall-back
        // (2025-10-26 03:00 → 02:00): the repeated local hour 02 is one hourly period.
        var spring = Every(TimeSpan.FromMinutes(30), new DateTimeOffset(2025, 3, 29, 22, 0, 0, TimeSpan.Zero), new DateTimeOffset(2025, 3, 30, 4, 0, 0, TimeSpan.Zero));
        var autumn = Every(TimeSpan.FromMinutes(30), new DateTimeOffset(2025, 10, 25, 22, 0, 0, TimeSpan.Zero), new DateTimeOffset(2025, 10, 26, 4, 0, 0, TimeSpan.Zero));
        var history = spring.Concat(autumn).ToList();
        var policy = new RetentionPolicy(Hourly: 100, Daily: 3);

        var decisions = RetentionPlanner.Plan(history, policy, Rome);

        AssertInvariants(decisions, history);
        var hourly = decisions.Where(d => d.Reasons.Any(r => r.StartsWith("hourly ", StringComparison.Ordinal))).ToList();
        Assert.DoesNotContain(hourly, d => d.Reasons.Any(r => r.StartsWith("hourly 2025-03-30 02h", StringComparison.Ordinal)));
        Assert.Single(hourly, d => d.Reasons.Any(r => r.StartsWith("hourly 2025-10-26 02h", StringComparison.Ordinal)));
        Golden.AssertMatches("Retention/golden/dst-europe-rome.txt", Table(decisions, policy, Rome));
    }

    [Fact]
    public void Within_counts_back_from_the_newest_set_not_from_now()
    {
        // Daily sets that stopped long ago: Within must not expire them all.
        var history = Every(TimeSpan.FromDays(1), new DateTimeOffset(2020, 1, 1, 6, 0, 0, TimeSpan.Zero), new DateTimeOffset(2020, 1, 30, 6, 0, 0, TimeSpan.Zero)).ToList();
        Assert.True(RetentionDuration.TryParse("5d12h", out var within));
        var policy = new RetentionPolicy(Within: within);

        var decisions = RetentionPlanner.Plan(history, policy, TimeZoneInfo.Utc);

        AssertInvariants(decisions, history);
        Assert.Equal(6, decisions.Count(d => d.Keep)); // Jan 30 back to Jan 25 (Jan 24 06:00 is 6d before)
        Golden.AssertMatches("Retention/golden/within.txt", Table(decisions, policy, TimeZoneInfo.Utc));
    }

    [Fact]
    public void Sets_of_the_same_second_are_one_set_and_the_plan_is_stable()
    {
        var t = new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
        SetId[] history = [SetId.At(t), SetId.At(t.AddMilliseconds(400)), SetId.At(t.AddSeconds(1)), SetId.At(t.AddSeconds(1).AddMilliseconds(999)), SetId.At(t.AddHours(-1))];
        var policy = new RetentionPolicy(Last: 1, Hourly: 2);

        var first = RetentionPlanner.Plan(history, policy, TimeZoneInfo.Utc);
        var second = RetentionPlanner.Plan(history.Reverse(), policy, TimeZoneInfo.Utc);

        Assert.Equal(3, first.Count);
        Assert.Equal(first.Select(d => (d.Id, d.Keep, string.Join(",", d.Reasons))), second.Select(d => (d.Id, d.Keep, string.Join(",", d.Reasons))));
        Golden.AssertMatches("Retention/golden/same-second.txt", Table(first, policy, TimeZoneInfo.Utc));
    }

    [Fact]
    public void Unlimited_counts_keep_one_set_per_period_and_an_empty_policy_is_refused()
    {
        var history = Every(TimeSpan.FromHours(7), new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2025, 1, 10, 0, 0, 0, TimeSpan.Zero)).ToList();

        var decisions = RetentionPlanner.Plan(history, new RetentionPolicy(Daily: RetentionPolicy.Unlimited), TimeZoneInfo.Utc);

        Assert.Equal(10, decisions.Count(d => d.Keep));
        Assert.Throws<ArgumentException>(() => RetentionPlanner.Plan(history, new RetentionPolicy(), TimeZoneInfo.Utc));
        Assert.Empty(RetentionPlanner.Plan([], new RetentionPolicy(Last: 1), TimeZoneInfo.Utc));
    }

    [Fact]
    public void Sets_whose_signature_is_refused_cost_no_signed_set_its_place()
    {
        // Three genuine daily sets, then forged ones dated a day apart into the future: among all
        // sets they take the Last, Daily and Within rules' places; the genuine ones are kept as the
        // rules keep them among the sets whose signature is accepted.
        var start = new DateTimeOffset(2025, 1, 1, 3, 0, 0, TimeSpan.Zero);
        var genuine = Every(TimeSpan.FromDays(1), start, start.AddDays(2)).ToList();
        var forged = Every(TimeSpan.FromDays(1), start.AddYears(10), start.AddYears(10).AddDays(9)).ToList();
        Assert.True(RetentionDuration.TryParse("2d", out var twoDays));
        var policy = new RetentionPolicy(Last: 3, Daily: 7, Within: twoDays);

        var decisions = RetentionPlanner.Plan(genuine.Concat(forged), policy, TimeZoneInfo.Utc, forged.ToHashSet());
        var blind = RetentionPlanner.Plan(genuine.Concat(forged), policy, TimeZoneInfo.Utc);

        AssertInvariants(decisions, genuine.Concat(forged));
        Assert.All(genuine, id => Assert.False(blind.Single(d => d.Id == id).Keep));
        Assert.All(genuine, id => Assert.True(decisions.Single(d => d.Id == id).Keep));
        Assert.Equal(
            ["within 2d of the newest" + RetentionPlanner.AmongSigned, "last set" + RetentionPlanner.AmongSigned, "daily 2025-01-03" + RetentionPlanner.AmongSigned],
            decisions.Single(d => d.Id == genuine[^1]).Reasons);
        Assert.Equal(["last set" + RetentionPlanner.AmongSigned, "daily 2025-01-01" + RetentionPlanner.AmongSigned], decisions.Single(d => d.Id == genuine[0]).Reasons);
        // The refused sets are decided as if nothing were refused.
        Assert.Equal(blind.Where(d => forged.Contains(d.Id)).Select(d => (d.Id, d.Keep)), decisions.Where(d => forged.Contains(d.Id)).Select(d => (d.Id, d.Keep)));
        // Refusing sets the rules remove changes nothing.
        var removed = blind.Where(d => !d.Keep).Select(d => d.Id).Take(5).ToHashSet();
        Assert.Equal(blind.Select(d => (d.Id, d.Keep)), RetentionPlanner.Plan(genuine.Concat(forged), policy, TimeZoneInfo.Utc, removed).Select(d => (d.Id, d.Keep)));
    }

    [Theory]
    [InlineData("2d12h", "2d12h")]
    [InlineData("1y6m", "1y6m")]
    [InlineData("48h", "48h")]
    public void Durations_parse_as_restic_writes_them(string text, string expected)
    {
        Assert.True(RetentionDuration.TryParse(text, out var duration));
        Assert.Equal(expected, duration.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("2 days")]
    [InlineData("0d")]
    [InlineData("12h2d")]
    public void Malformed_durations_are_refused(string text) => Assert.False(RetentionDuration.TryParse(text, out _));
}
