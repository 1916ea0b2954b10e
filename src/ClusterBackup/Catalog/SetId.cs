using System.Globalization;

namespace ClusterBackup.Catalog;

/// <summary>A backup set's id: its UTC start time as <c>yyyyMMdd'T'HHmmss'Z'</c>, which sorts as time.</summary>
internal readonly record struct SetId(DateTimeOffset StartedAt) : IComparable<SetId>
{
    public const string Format = "yyyyMMdd'T'HHmmss'Z'";

    public static SetId At(DateTimeOffset time)
    {
        var utc = time.ToUniversalTime();
        return new SetId(new DateTimeOffset(utc.Ticks - (utc.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero));
    }

    public static bool TryParse(string text, out SetId id)
    {
        if (DateTimeOffset.TryParseExact(text, Format, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time))
        {
            id = new SetId(time);
            return true;
        }

        id = default;
        return false;
    }

    public SetId Next() => new(StartedAt.AddSeconds(1));

    public int CompareTo(SetId other) => StartedAt.CompareTo(other.StartedAt);

    public override string ToString() => StartedAt.UtcDateTime.ToString(Format, CultureInfo.InvariantCulture);
}
