using ClusterBackup.Configuration;

namespace ClusterBackup.Tests.Configuration;

/// <summary>When the daemon catches up at start-up, and when a late catch-up finds another run did it.</summary>
public sealed class MissedScheduleTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 27, 12, 30, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(null, true)]                        // never backed up
    [InlineData("2026-11-27T06:00:00Z", true)]     // the 12:00 firing was missed
    [InlineData("2026-11-27T11:59:59Z", true)]     // started before the 12:00 firing
    [InlineData("2026-11-27T12:00:00Z", false)]    // the 12:00 firing's own set
    [InlineData("2026-11-27T12:20:00Z", false)]    // a later one (another agent caught up)
    public void A_schedule_is_missed_when_it_fired_since_the_newest_set_started(string? newest, bool missed)
    {
        Assert.True(CronSchedule.TryParse("0 */6 * * *", TimeZoneInfo.Utc, out var schedule, out var error), error);
        var cluster = new ClusterSettings("prod", schedule, null, TimeZoneInfo.Utc, [], new RetentionPolicy(), TimeSpan.FromHours(24), new RetryPolicy(0, TimeSpan.FromMinutes(5)));

        Assert.Equal(missed, cluster.MissedSchedule(newest is null ? null : DateTimeOffset.Parse(newest, System.Globalization.CultureInfo.InvariantCulture), Now));
    }
}
