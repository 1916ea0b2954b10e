using ClusterBackup.Catalog;

namespace ClusterBackup.Tests.Catalog;

public sealed class SetIdTests
{
    [Fact]
    public void A_set_id_is_the_utc_start_second()
    {
        var id = SetId.At(new DateTimeOffset(2026, 3, 29, 2, 30, 15, 999, TimeSpan.FromHours(2)));

        Assert.Equal("20260329T003015Z", id.ToString());
    }

    [Fact]
    public void Set_ids_parse_back_and_sort_as_time()
    {
        Assert.True(SetId.TryParse("20261125T221408Z", out var id));
        Assert.Equal(new DateTimeOffset(2026, 11, 25, 22, 14, 8, TimeSpan.Zero), id.StartedAt);
        Assert.False(SetId.TryParse("2026-11-25", out _));
        Assert.False(SetId.TryParse("20261125T221408", out _));
        Assert.True(id.Next().CompareTo(id) > 0);
        Assert.True(string.CompareOrdinal(id.ToString(), id.Next().ToString()) < 0);
    }
}
