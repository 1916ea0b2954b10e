using Quartz;

namespace ClusterBackup.Configuration;

/// <summary>
/// A cluster's <c>Schedule</c>: standard 5-field cron (minute hour day-of-month month day-of-week,
/// 0 or 7 = Sunday), or Quartz's 6/7-field form with seconds, evaluated in the cluster's time zone.
/// </summary>
internal sealed class CronSchedule
{
    private CronSchedule(string text, CronExpression expression)
    {
        Text = text;
        Expression = expression;
    }

    public string Text { get; }

    /// <summary>The parsed expression, in the cluster's time zone, as the trigger uses it.</summary>
    public CronExpression Expression { get; }

    public static bool TryParse(string text, TimeZoneInfo zone, out CronSchedule schedule, out string error)
    {
        schedule = null!;
        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        CronFormat format;
        switch (fields)
        {
            case 5:
                format = CronFormat.Unix;
                break;
            case 6 or 7:
                format = CronFormat.Quartz;
                break;
            default:
                error = $"'{text}' has {fields} fields: use standard cron 'minute hour day-of-month month day-of-week' (or Quartz's 6/7 fields with seconds)";
                return false;
        }

        try
        {
            schedule = new CronSchedule(text, CronExpression.Parse(text, format).WithTimeZone(zone));
            error = string.Empty;
            return true;
        }
        catch (FormatException ex)
        {
            error = $"'{text}' is not a valid cron schedule: {ex.Message}";
            return false;
        }
    }

    /// <summary>The first fire time strictly after <paramref name="time"/>, or null if there is none.</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset time) => Expression.GetNextValidTimeAfter(time);

    /// <summary>The gap between the two fire times after <paramref name="time"/>: the schedule's period there.</summary>
    public TimeSpan PeriodAfter(DateTimeOffset time) =>
        NextAfter(time) is { } first && NextAfter(first) is { } second ? second - first : TimeSpan.Zero;

    public override string ToString() => Text;
}
