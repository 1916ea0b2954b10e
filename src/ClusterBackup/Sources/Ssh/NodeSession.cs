using ClusterBackup.Configuration;
using Renci.SshNet;

namespace ClusterBackup.Sources.Ssh;

/// <summary>An open SSH connection to one control-plane node.</summary>
internal sealed class NodeSession(ControlPlaneSettings node, SshClient client, Func<SftpClient> sftpFactory) : IDisposable
{
    public ControlPlaneSettings Node { get; } = node;

    /// <summary>Runs a command whose output is small (certificates, status JSON) and returns it whole.</summary>
    public async Task<CommandResult> RunAsync(string command, CancellationToken cancellationToken = default)
    {
        using var ssh = client.CreateCommand(Privileged(command));
        await ssh.ExecuteAsync(cancellationToken);
        return new CommandResult(ssh.ExitStatus ?? -1, ssh.Result, ssh.Error);
    }

    /// <summary>
    /// Streams a command's standard output. The stream fails at its end if the command exited
    /// non-zero, so a consumer never commits what a failed command wrote. Only for small streams:
    /// SSH.NET does not apply back-pressure to exec channels.
    /// </summary>
    public Stream OpenOutput(string command, string step, CancellationToken cancellationToken = default)
    {
        var ssh = client.CreateCommand(Privileged(command));
        var execution = ssh.ExecuteAsync(cancellationToken);
        return new RemoteCommandStream(ssh, execution, Node.Name, step, command);
    }

    /// <summary>Forwards a loopback port on this machine to <paramref name="remotePort"/> on the node's loopback.</summary>
    public ForwardedPortLocal ForwardLocalPort(int remotePort)
    {
        var forward = new ForwardedPortLocal("127.0.0.1", 0, "127.0.0.1", (uint)remotePort);
        client.AddForwardedPort(forward);
        forward.Start();
        return forward;
    }

    public async Task<SftpClient> OpenSftpAsync(CancellationToken cancellationToken = default)
    {
        var sftp = sftpFactory();
        try
        {
            await sftp.ConnectAsync(cancellationToken);
            return sftp;
        }
        catch
        {
            sftp.Dispose();
            throw;
        }
    }

    /// <summary>The command as run on the node: through <c>sudo -n</c> when configured.</summary>
    public string Privileged(string command) =>
        Node.Ssh.Sudo ? $"sudo -n sh -c {ShellQuote.Quote(command)}" : command;

    public void Dispose() => client.Dispose();
}

internal sealed record CommandResult(int ExitStatus, string Output, string Error)
{
    public bool Succeeded => ExitStatus == 0;

    /// <summary>The last line of standard error, for a one-line message.</summary>
    public string ErrorSummary =>
        Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault()
        ?? $"exit status {ExitStatus}";
}
