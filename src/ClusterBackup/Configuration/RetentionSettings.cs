
namespace ClusterBackup.Configuration;

/// <summary>The policy a validated <c>Retention</c> section describes.</summary>
internal static class RetentionSettings
{
    public static RetentionPolicy ToPolicy(RetentionOptions options) => new(
        options.KeepLast,
        options.KeepHourly,
        options.KeepDaily,
        options.KeepWeekly,
        options.KeepMonthly,
        options.KeepYearly,
        options.KeepWithin is { Length: > 0 } text && RetentionDuration.TryParse(text, out var within) ? within : null);

    public static IEnumerable<(string Key, int Value)> Counts(RetentionOptions options) =>
    [
        ("KeepLast", options.KeepLast), ("KeepHourly", options.KeepHourly), ("KeepDaily", options.KeepDaily),
        ("KeepWeekly", options.KeepWeekly), ("KeepMonthly", options.KeepMonthly), ("KeepYearly", options.KeepYearly),
    ];
}
