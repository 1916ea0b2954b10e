using ClusterBackup.Configuration;

namespace ClusterBackup.Tests.Configuration;

public sealed class CronScheduleTests
{
    private static readonly TimeZoneInfo Rome = TimeZoneInfo.FindSystemTimeZoneById("Europe/Rome");

    [Fact]
    public void Five_fields_are_standard_cron_in_the_cluster_time_zone()
    {
        Assert.True(CronSchedule.TryParse("30 2 * * *", Rome, out var schedule, out _));

        var next = schedule.NextAfter(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));

        Assert.Equal(new DateTimeOffset(2026, 11, 27, 1, 30, 0, TimeSpan.Zero), next); // 02:30 in Rome (UTC+1)
        Assert.Equal(TimeSpan.FromDays(1), schedule.PeriodAfter(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero)));
    }

    [Fact]
    public void Sunday_is_0_or_7()
    {
        Assert.True(CronSchedule.TryParse("0 3 * * 0", TimeZoneInfo.Utc, out var zero, out _));
        Assert.True(CronSchedule.TryParse("0 3 * * 7", TimeZoneInfo.Utc, out var seven, out _));
        var thursday = new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero);

        Assert.Equal(DayOfWeek.Sunday, zero.NextAfter(thursday)!.Value.DayOfWeek);
        Assert.Equal(zero.NextAfter(thursday), seven.NextAfter(thursday));
    }

    [Fact]
    public void Six_fields_have_seconds()
    {
        Assert.True(CronSchedule.TryParse("*/3 * * * * ?", TimeZoneInfo.Utc, out var schedule, out _));

        Assert.Equal(TimeSpan.FromSeconds(3), schedule.PeriodAfter(new DateTimeOffset(2026, 11, 26, 0, 0, 1, TimeSpan.Zero)));
    }

    [Theory]
    [InlineData("* * *", "has 3 fields")]
    [InlineData("61 * * * *", "is not a valid cron schedule")]
    [InlineData("0 25 * * *", "is not a valid cron schedule")]
    public void A_bad_schedule_says_why(string text, string expected)
    {
        Assert.False(CronSchedule.TryParse(text, TimeZoneInfo.Utc, out _, out var error));

        Assert.Contains(expected, error, StringComparison.Ordinal);
    }
}
