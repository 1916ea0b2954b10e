using ClusterBackup.Configuration;
using ClusterBackup.Sources;
using Renci.SshNet;

namespace ClusterBackup.Sources.Ssh;

/// <summary>An open SSH connection to one control-plane node.</summary>
internal sealed class NodeSession(ControlPlaneSettings node, SshClient client, Func<SftpClient> sftpFactory) : IDisposable
{
    public ControlPlaneSettings Node { get; } = node;

    private readonly Lock _shellLock = new();
    private NodeShell? _shell;

    /// <summary>
    /// Runs a command whose output is small (certificates, status JSON) and returns it whole, through
    /// the session's one <see cref="NodeShell"/>: a series of commands pays the login shell's start
    /// (and sudo's) once, not once each. Commands run one at a time.
    /// </summary>
    public Task<CommandResult> RunAsync(string command, CancellationToken cancellationToken = default)
    {
        lock (_shellLock)
        {
            _shell ??= new NodeShell(client, Privileged(NodeCommands.Shell));
        }

        return _shell.RunAsync(command, cancellationToken);
    }

    /// <summary>
    /// Streams a command's standard output. The stream fails at its end if the command exited
    /// non-zero, so a consumer never commits what a failed command wrote. Only for small streams:
    /// SSH.NET does not apply back-pressure to exec channels.
    /// </summary>
    public Stream OpenOutput(string command, NodeStep step, CancellationToken cancellationToken = default)
    {
        var ssh = client.CreateCommand(Privileged(command));
        var execution = ssh.ExecuteAsync(cancellationToken);
        return new RemoteCommandStream(ssh, execution, Node.Name, step, command);
    }

    /// <summary>
    /// Reads a large file (an etcd snapshot) over an exec channel, at the reader's pace: memory
    /// stays bounded however large the file and however slow the reader (see <see cref="PacedFileStream"/>).
    /// </summary>
    public Task<PacedFileStream> OpenFileAsync(string path, NodeStep step, CancellationToken cancellationToken = default) =>
        PacedFileStream.OpenAsync(client.CreateCommand(Privileged(NodeCommands.ReadInSlices(path, PacedFileStream.SliceMiB))), Node.Name, step, path, cancellationToken);

    /// <summary>
    /// Starts a command that keeps running while the caller reads its output; disposing it closes
    /// the channel. For a command that must notice when this agent goes away (its output then breaks).
    /// </summary>
    public RunningCommand Start(string command, CancellationToken cancellationToken = default)
    {
        var ssh = client.CreateCommand(Privileged(command));
        return new RunningCommand(ssh, ssh.ExecuteAsync(cancellationToken));
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
            SessionSocket.TryMakeBlocking(sftp);
            return sftp;
        }
        catch
        {
            sftp.Dispose();
            throw;
        }
    }

    private volatile bool _broken;

    /// <summary>
    /// False once the connection dropped (or was closed), or an SSH failure was seen on it
    /// (<see cref="Abandon"/>): nothing more runs over this session.
    /// </summary>
    public bool IsConnected => !_broken && client.IsConnected;

    /// <summary>
    /// After an SSH failure on this session: it counts as dropped from now on, so that the next
    /// caller gets a new connection even before the client notices that the old one is gone.
    /// </summary>
    public void Abandon() => _broken = true;

    /// <summary>The command as run on the node: through <c>sudo -n</c> when configured.</summary>
    public string Privileged(string command) => NodeCommands.AsRunOn(Node, command);

    public void Dispose()
    {
        _shell?.Dispose();
        client.Dispose();
    }
}

/// <summary>A command started with <see cref="NodeSession.Start"/>.</summary>
internal sealed class RunningCommand(SshCommand command, Task execution) : IDisposable
{
    public Stream Output => command.OutputStream;

    /// <summary>Waits for the command to exit; its standard output is read from <see cref="Output"/>, not returned.</summary>
    public async Task<CommandResult> WaitAsync(CancellationToken cancellationToken = default)
    {
        await execution.WaitAsync(cancellationToken);
        return new CommandResult(command.ExitStatus ?? -1, string.Empty, command.Error);
    }

    public void Dispose()
    {
        // The task ends faulted or cancelled when the channel closes under it; nobody awaits it then.
        execution.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        command.Dispose();
    }
}

internal sealed record CommandResult(int ExitStatus, string Output, string Error)
{
    public bool Succeeded => ExitStatus == 0;

    /// <summary>The last line of standard error, for a one-line message.</summary>
    public string ErrorSummary => LastLineOf(Error) ?? $"exit status {ExitStatus}";

    /// <summary>The last non-blank line of a command's standard error; null when it printed none.</summary>
    public static string? LastLineOf(string error) =>
        error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
}
