using ClusterBackup.Sources;

namespace ClusterBackup.Tests.Sources;

/// <summary>The lines of <c>df -Pk</c> that <see cref="NodeCommands.FreeSpace"/> prints, read.</summary>
public sealed class FreeSpaceTests
{
    [Fact]
    public void Dfs_lines_are_read_in_the_order_of_the_paths_mount_points_with_spaces_included()
    {
        var output = """
            /dev/vda1          253869740 13041236 227894008       6% /
            tmpfs                   2048        0      2048       0% /mnt/restore space
            //server/share ext    1000     10       990       1% /srv

            """;

        var space = FreeSpace.Parse(output, ["/backup", "/mnt/restore space/x", "/srv"]);

        Assert.NotNull(space);
        Assert.Equal(new FreeSpace("/", 253869740L * 1024, 227894008L * 1024), space["/backup"]);
        Assert.Equal(new FreeSpace("/mnt/restore space", 2048L * 1024, 2048L * 1024), space["/mnt/restore space/x"]);
        Assert.Equal(new FreeSpace("/srv", 1000L * 1024, 990L * 1024), space["/srv"]);
    }

    [Theory]
    [InlineData("/dev/vda1 100 10 90 10% /\n")]
    [InlineData("/dev/vda1 100 10 90 10% /\nFilesystem 1024-blocks Used Available Capacity Mounted on\n")]
    [InlineData("df: /backup: No such file or directory\n/dev/vda1 100 10 90 10% /\n")]
    [InlineData("")]
    public void Output_that_is_not_one_df_line_per_path_says_nothing(string output)
    {
        Assert.Null(FreeSpace.Parse(output, ["/backup", "/var/lib"]));
    }

    [Theory]
    [InlineData("0", 0L)]
    [InlineData("2048", 2048L * 1024)]
    [InlineData("9007199254740991", 9007199254740991L * 1024)]
    [InlineData("9007199254740992", null)] // more bytes than a long holds
    [InlineData("", null)]
    [InlineData("-1", null)]
    [InlineData("12K", null)]
    [InlineData("du: cannot access", null)]
    public void A_count_of_KiB_is_read_as_bytes_or_not_at_all(string kib, long? bytes)
    {
        Assert.Equal(bytes, FreeSpace.Bytes(kib));
    }
}
