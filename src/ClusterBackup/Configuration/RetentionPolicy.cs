using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace ClusterBackup.Configuration;

/// <summary>
/// restic's retention vocabulary. Each count keeps the newest set of that many distinct periods
/// (<c>-1</c>: of every period); <see cref="Within"/> keeps every set that close to the newest one.
/// </summary>
internal sealed record RetentionPolicy(
    int Last = 0,
    int Hourly = 0,
    int Daily = 0,
    int Weekly = 0,
    int Monthly = 0,
    int Yearly = 0,
    RetentionDuration? Within = null)
{
    public const int Unlimited = -1;

    public bool IsEmpty => Last == 0 && Hourly == 0 && Daily == 0 && Weekly == 0 && Monthly == 0 && Yearly == 0 && Within is null;

    public override string ToString()
    {
        var parts = new List<string>();
        void Add(string name, int count)
        {
            if (count != 0)
            {
                parts.Add(count == Unlimited ? $"{name} all" : string.Create(CultureInfo.InvariantCulture, $"{name} {count}"));
            }
        }

        Add("last", Last);
        Add("hourly", Hourly);
        Add("daily", Daily);
        Add("weekly", Weekly);
        Add("monthly", Monthly);
        Add("yearly", Yearly);
        if (Within is { } within)
        {
            parts.Add($"within {within}");
        }

        return parts.Count == 0 ? "keep nothing" : string.Join(", ", parts);
    }
}

/// <summary>A calendar duration as restic writes it: <c>1y2m3d4h</c> (any part may be left out).</summary>
internal sealed partial record RetentionDuration(int Years, int Months, int Days, int Hours)
{
    public static bool TryParse(string text, out RetentionDuration duration)
    {
        duration = null!;
        var match = Pattern().Match(text.Trim());
        if (!match.Success || text.Trim().Length == 0)
        {
            return false;
        }

        static int Part(Group group) => group.Success ? int.Parse(group.Value, CultureInfo.InvariantCulture) : 0;
        duration = new RetentionDuration(Part(match.Groups["y"]), Part(match.Groups["m"]), Part(match.Groups["d"]), Part(match.Groups["h"]));
        return duration.Years + duration.Months + duration.Days + duration.Hours > 0;
    }

    /// <summary>The local time this duration before <paramref name="time"/>, by the calendar.</summary>
    public DateTime Before(DateTime time) => time.AddYears(-Years).AddMonths(-Months).AddDays(-Days).AddHours(-Hours);

    public override string ToString()
    {
        var text = new StringBuilder();
        foreach (var (value, unit) in new[] { (Years, 'y'), (Months, 'm'), (Days, 'd'), (Hours, 'h') })
        {
            if (value != 0)
            {
                text.Append(value.ToString(CultureInfo.InvariantCulture)).Append(unit);
            }
        }

        return text.ToString();
    }

    [GeneratedRegex(@"^(?:(?<y>\d{1,4})y)?(?:(?<m>\d{1,5})m)?(?:(?<d>\d{1,6})d)?(?:(?<h>\d{1,7})h)?$")]
    private static partial Regex Pattern();
}
