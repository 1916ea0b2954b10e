using ClusterBackup.Rig;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Tests.Support;
using Renci.SshNet;

namespace ClusterBackup.Tests.Sources.Ssh;

/// <summary>
/// <see cref="NodeShell"/> against the rig's real sshd: commands through the one shell give what
/// an exec channel each gives, in one shell process, and a command that does not complete costs
/// only that shell.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class NodeShellTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    private Task<NodeSession> ConnectAsync(bool sudo = false) => RigSessions.ConnectAsync(_rig, "shell", "tunnel", sudo);

    /// <summary>A plain SSH.NET client to the same node, as the SSH user the rig's configurations use.</summary>
    private async Task<SshClient> ClientAsync()
    {
        var client = new SshClient("127.0.0.1", _rig.Node1.Port, Environment.UserName, new PrivateKeyFile(_rig.ClientKey));
        await client.ConnectAsync(CancellationToken.None);
        return client;
    }

    public static TheoryData<string> Commands =>
    [
        "echo hello",
        "printf 'no newline at the end'",
        "echo to-stderr >&2; echo to-stdout; exit 3",
        "printf 'a\\nb\\n\\n'",
        "true # a comment that must end with its line",
        "exit 0",
        "if [ -e /nonexistent ]; then echo there; else echo 'not there' >&2; exit 1; fi",
        "printf '%s' 'cluster-backup-0 1'",
    ];

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task A_command_in_the_shell_gives_what_its_own_exec_channel_gives(string command)
    {
        using var session = await ConnectAsync();
        using var client = await ClientAsync();
        using var exec = client.CreateCommand(command);
        await exec.ExecuteAsync();
        var alone = new CommandResult(exec.ExitStatus ?? -1, exec.Result, exec.Error);

        var shelled = await session.RunAsync(command);
        var again = await session.RunAsync(command);

        Assert.Equal((alone.ExitStatus, alone.Output, alone.Error), (shelled.ExitStatus, shelled.Output, shelled.Error));
        Assert.Equal((alone.ExitStatus, alone.Output, alone.Error), (again.ExitStatus, again.Output, again.Error));
    }

    [Fact]
    public async Task Commands_share_one_shell_process_but_not_its_state()
    {
        using var session = await ConnectAsync();

        var first = await session.RunAsync("echo $PPID; x=set; cd /tmp");
        var reading = await session.RunAsync("cat"); // reads /dev/null, not the commands that follow
        var second = await session.RunAsync("echo $PPID; echo \"x=${x:-unset}\"; pwd");

        Assert.True(first.Succeeded, first.Error);
        Assert.Equal((0, string.Empty), (reading.ExitStatus, reading.Output));
        var lines = second.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(first.Output.Trim(), lines[0]); // the same shell ran both
        Assert.Equal("x=unset", lines[1]);
        Assert.NotEqual("/tmp", lines[2]);
    }

    [Fact]
    public async Task A_cancelled_command_ends_its_shell_and_the_next_command_gets_a_new_one()
    {
        using var session = await ConnectAsync();
        var before = await session.RunAsync("echo $PPID");

        using var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => session.RunAsync("sleep 3; echo late", soon.Token));
        var after = await session.RunAsync("echo $PPID; echo next");

        var lines = after.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEqual(before.Output.Trim(), lines[0]);
        Assert.Equal("next", lines[1]); // nothing of the abandoned command's output
    }

    /// <summary>The shell as a login shell would start it, with what its rc files do first.</summary>
    [Theory]
    [InlineData("echo 'rc-file noise'; echo 'rc-file warning' >&2; exec sh", 0, "hi\n", "")]
    [InlineData("echo 'sudo: a password is required' >&2; exit 1", 1, "", "sudo: a password is required")]
    [InlineData("exit 0", -1, "", "the node's shell ended before the command finished")]
    public async Task What_the_shell_does_before_it_reads_commands_is_dropped_and_a_shell_that_never_starts_fails_the_command(
        string start, int status, string output, string error)
    {
        using var client = await ClientAsync();
        using var shell = new NodeShell(client, start);

        var result = await shell.RunAsync("echo hi", CancellationToken.None);

        Assert.Equal((status, output), (result.ExitStatus, result.Output));
        Assert.Equal(error, result.ExitStatus == 0 ? result.Error : result.ErrorSummary);
    }

    /// <summary>
    /// A shell that ends at once (sudo refused) may close its channel before its input is opened: its
    /// own error all the same, never SSH.NET's "input stream can be used only during execution".
    /// </summary>
    [Fact]
    public async Task A_shell_that_ends_at_once_fails_the_command_with_its_own_error_however_soon_it_ends()
    {
        var completed = 0;
        var client = await ClientAsync(); // one connection, as a session's shells share it: the race shows within a few tries
        try
        {
            for (var i = 0; i < 40; i++)
            {
                using var shell = new NodeShell(client, "echo 'sudo: a password is required' >&2; exit 1");
                try
                {
                    var result = await shell.RunAsync("echo hi", CancellationToken.None);

                    Assert.Equal((1, "sudo: a password is required"), (result.ExitStatus, result.ErrorSummary));
                    completed++;
                }
                catch (Renci.SshNet.Common.SshConnectionException ex) when (ex.Message.Contains("nonexistent channel", StringComparison.Ordinal))
                {
                    // The race left: SSH.NET sent the first command after it had closed the channel,
                    // and sshd dropped the connection. The command fails either way; connect again.
                    client.Dispose();
                    client = await ClientAsync();
                }
            }
        }
        finally
        {
            client.Dispose();
        }

        Assert.True(completed >= 20, $"{completed} of 40 gave the shell's own error");
    }

    [Fact]
    public async Task With_sudo_the_shell_runs_as_root()
    {
        using var session = await ConnectAsync(sudo: true);

        var root = await session.RunAsync("id -u");
        var again = await session.RunAsync("id -u; echo $PPID");

        Assert.Equal("0", root.Output.Trim());
        Assert.Equal("0", again.Output.Split('\n')[0]);
    }
}
