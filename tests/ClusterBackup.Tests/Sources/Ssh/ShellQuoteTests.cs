using ClusterBackup.Rig;
using ClusterBackup.Sources.Ssh;

namespace ClusterBackup.Tests.Sources.Ssh;

public sealed class ShellQuoteTests
{
    [Theory]
    [InlineData("/etc/kubernetes/pki", "/etc/kubernetes/pki")]
    [InlineData("--endpoints=https://127.0.0.1:2379", "--endpoints=https://127.0.0.1:2379")]
    [InlineData("a b", "'a b'")]
    [InlineData("", "''")]
    [InlineData("it's", "'it'\\''s'")]
    [InlineData("$(reboot)", "'$(reboot)'")]
    public void Quotes_only_what_needs_it(string value, string expected) => Assert.Equal(expected, ShellQuote.Quote(value));

    [Theory]
    [InlineData("plain")]
    [InlineData("with space and 'quotes' and \"double\"")]
    [InlineData("$HOME `id` $(id) ; | & > < * ? ~ \\ !")]
    [InlineData("line\nbreak")]
    [InlineData("")]
    public async Task A_real_shell_reads_back_exactly_the_value(string value)
    {
        var printed = await Tools.CheckAsync("sh", "-c", $"printf %s {ShellQuote.Quote(value)}");

        Assert.Equal(value, printed);
    }
}
