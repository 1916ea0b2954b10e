using System.Text;
using ClusterBackup.Sources.Ssh;

namespace ClusterBackup.Tests.Sources.Ssh;

public sealed class CommandOutputLinesTests
{
    [Fact]
    public async Task Reads_lines_and_leaves_what_follows_in_the_stream()
    {
        var output = new MemoryStream(Encoding.UTF8.GetBytes("4096\n/var/tmp/cluster-backup.Ab12\nFILE-BYTES"));
        var lines = new CommandOutputLines(output, 64);

        Assert.Equal("4096", await lines.NextAsync(CancellationToken.None));
        Assert.Equal("/var/tmp/cluster-backup.Ab12", await lines.NextAsync(CancellationToken.None));
        Assert.Equal("FILE-BYTES", Encoding.UTF8.GetString(output.ToArray()[(int)output.Position..]));
    }

    [Theory]
    [InlineData("")]
    [InlineData("12")]
    public async Task Output_that_ends_before_a_newline_is_no_line(string text)
    {
        var lines = new CommandOutputLines(new MemoryStream(Encoding.UTF8.GetBytes(text)), 64);

        Assert.Null(await lines.NextAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_line_past_the_limit_comes_back_cut_and_the_rest_stays_unread()
    {
        var output = new MemoryStream(Encoding.UTF8.GetBytes("123456789\n"));
        var lines = new CommandOutputLines(output, 4);

        Assert.Equal("1234", await lines.NextAsync(CancellationToken.None));
        Assert.Equal(4, output.Position);
    }

    [Fact]
    public async Task An_empty_line_is_a_line()
    {
        var lines = new CommandOutputLines(new MemoryStream("\nsaved\n"u8.ToArray()), 64);

        Assert.Equal(string.Empty, await lines.NextAsync(CancellationToken.None));
        Assert.Equal("saved", await lines.NextAsync(CancellationToken.None));
    }
}
