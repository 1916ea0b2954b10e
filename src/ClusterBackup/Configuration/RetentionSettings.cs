
namespace ClusterBackup.Configuration;

/// <summary>The <c>Retention</c> section: its validation and the policy it describes.</summary>
internal static class RetentionSettings
{
    public static IEnumerable<string> Validate(RetentionOptions options, string where)
    {
        foreach (var (key, value) in Counts(options))
        {
            if (value < RetentionPolicy.Unlimited)
            {
                yield return $"{where}:{key}: {value} is not a count (0 or more, or -1 for every period)";
            }
        }

        if (options.KeepWithin is { Length: > 0 } within && !RetentionDuration.TryParse(within, out _))
        {
            yield return $"{where}:KeepWithin: {Redaction.Quote(within)} is not a duration like 2d12h or 1y6m (y, m, d, h)";
        }

        if (options.IncompleteGraceHours < 1)
        {
            yield return $"{where}:IncompleteGraceHours: {options.IncompleteGraceHours} must be at least 1";
        }

        if (Counts(options).All(c => c.Value == 0) && string.IsNullOrEmpty(options.KeepWithin))
        {
            yield return $"{where}: the policy keeps nothing: set at least one of KeepLast, KeepHourly, KeepDaily, KeepWeekly, KeepMonthly, KeepYearly, KeepWithin (here or in Defaults)";
        }
    }

    public static RetentionPolicy ToPolicy(RetentionOptions options) => new(
        options.KeepLast,
        options.KeepHourly,
        options.KeepDaily,
        options.KeepWeekly,
        options.KeepMonthly,
        options.KeepYearly,
        options.KeepWithin is { Length: > 0 } text && RetentionDuration.TryParse(text, out var within) ? within : null);

    private static IEnumerable<(string Key, int Value)> Counts(RetentionOptions options) =>
    [
        ("KeepLast", options.KeepLast), ("KeepHourly", options.KeepHourly), ("KeepDaily", options.KeepDaily),
        ("KeepWeekly", options.KeepWeekly), ("KeepMonthly", options.KeepMonthly), ("KeepYearly", options.KeepYearly),
    ];
}
