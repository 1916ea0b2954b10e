using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Ssh;

namespace ClusterBackup.Restore;

/// <summary>A node over its SSH session: commands through the session's one shell (under sudo when configured), uploads over SFTP.</summary>
internal sealed class SshRestoreNode(NodeSession session) : IRestoreNode
{
    public async Task<RestoreCommandResult> RunAsync(string command, CancellationToken cancellationToken)
    {
        try
        {
            var result = await session.RunAsync(command, cancellationToken);
            return new RestoreCommandResult(result.ExitStatus, result.Output, result.ErrorSummary);
        }
        catch (Exception ex) when (IsConnectionLost(ex))
        {
            session.Abandon();
            throw new IOException($"the SSH connection failed: {ex.Message}", ex);
        }
    }

    public async Task UploadAsync(RestoreContent content, string remotePath, CancellationToken cancellationToken)
    {
        var ssh = session.Node.Ssh;
        if (!ssh.Sudo)
        {
            await SftpUploadAsync(content, remotePath, cancellationToken);
            return;
        }

        // SFTP runs as the SSH user, who cannot write where root keeps things: upload into a private
        // dir the user owns, then move the file into place as root, owned by root.
        var made = await session.RunAsync(NodeCommands.MakeUploadDirectory(ssh.User), cancellationToken);
        var directory = made.Output.Trim();
        if (!made.Succeeded || !directory.StartsWith(NodeCommands.TempPrefix, StringComparison.Ordinal))
        {
            throw new IOException($"cannot make an upload dir in /var/tmp: {made.ErrorSummary}");
        }

        try
        {
            var uploaded = $"{directory}/upload";
            await SftpUploadAsync(content, uploaded, cancellationToken);
            var moved = await session.RunAsync(NodeCommands.InstallAsRoot(uploaded, remotePath), cancellationToken);
            if (!moved.Succeeded)
            {
                throw new IOException($"cannot move the upload to {remotePath}: exit status {moved.ExitStatus}: {moved.ErrorSummary}");
            }
        }
        finally
        {
            await session.RunAsync(NodeCommands.RemoveTree(directory), CancellationToken.None);
        }
    }

    /// <summary>
    /// The content is written into a bounded pipe while SFTP sends what is in it: the upload runs at
    /// the speed of the slower side, with a few MiB in memory. A failure of either side stops the other;
    /// the content's own failure (a damaged set) is the one reported.
    /// </summary>
    private async Task SftpUploadAsync(RestoreContent content, string remotePath, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: Window, resumeWriterThreshold: Window / 2, useSynchronizationContext: false));
        var writing = Task.Run(async () =>
        {
            try
            {
                await using (var input = pipe.Writer.AsStream(leaveOpen: true))
                {
                    await content.WriteToAsync(input, stop.Token);
                }

                await pipe.Writer.CompleteAsync();
            }
            catch (Exception ex)
            {
                await pipe.Writer.CompleteAsync(ex);
                throw;
            }
        }, CancellationToken.None);

        Exception? uploadFailure = null;
        try
        {
            using var sftp = await session.OpenSftpAsync(stop.Token);
            await using (var output = pipe.Reader.AsStream())
            {
                await sftp.UploadFileAsync(output, remotePath, stop.Token);
            }

            sftp.ChangePermissions(remotePath, 600); // SSH.NET reads the digits as octal: the snapshot holds every Secret
        }
        catch (Exception ex)
        {
            uploadFailure = ex;
            await stop.CancelAsync();
            await pipe.Reader.CompleteAsync();
        }

        Exception? contentFailure = null;
        try
        {
            await writing;
        }
        catch (Exception ex)
        {
            contentFailure = ex;
        }

        // The content failed on its own (a damaged set, storage gone): that is the cause, and the
        // upload only broke off because of it (the pipe hands the content's exception to the reader).
        if (contentFailure is not null && (uploadFailure is null || uploadFailure == contentFailure || uploadFailure.InnerException == contentFailure))
        {
            if (contentFailure is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                ExceptionDispatchInfo.Throw(contentFailure);
            }

            throw new IOException(contentFailure.Message, contentFailure);
        }

        switch (uploadFailure)
        {
            case null:
                return;
            case OperationCanceledException when cancellationToken.IsCancellationRequested:
                ExceptionDispatchInfo.Throw(uploadFailure);
                return;
            case Renci.SshNet.Common.SshException or IOException or OperationCanceledException or SocketException:
                var reason = uploadFailure.Message + await WhyFailedAsync(uploadFailure, remotePath);
                if (IsConnectionLost(uploadFailure))
                {
                    session.Abandon();
                }

                throw new IOException($"cannot upload {remotePath}: {reason}", uploadFailure);
            default:
                ExceptionDispatchInfo.Throw(uploadFailure);
                return;
        }
    }

    /// <summary>
    /// SFTP answers a full disk with its generic "Failure" (OpenSSH's sftp-server has no other
    /// status for ENOSPC): asks the node's <c>df</c> whether that was the cause, to say so. The
    /// space was checked before the restore began; another writer can still fill the disk meanwhile.
    /// </summary>
    private async Task<string> WhyFailedAsync(Exception failure, string remotePath)
    {
        if (failure is not Renci.SshNet.Common.SftpException { StatusCode: Renci.SshNet.Sftp.StatusCode.Failure })
        {
            return string.Empty;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var df = await session.RunAsync(NodeCommands.FreeSpace([remotePath]), timeout.Token);
            return df.Succeeded && FreeSpace.Parse(df.Output, [remotePath])?[remotePath] is { IsFull: true } space
                ? $": no space left on the node's {space.MountPoint} ({FreeSpace.MiB(space.AvailableBytes)} of {FreeSpace.MiB(space.TotalBytes)} free)"
                : string.Empty;
        }
        catch (Exception ex) when (ex is Renci.SshNet.Common.SshException or IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
            return string.Empty; // the connection went too: the upload's own error says enough
        }
    }

    /// <summary>
    /// The connection is gone: SSH.NET reports a cut connection as its own exception, or, when the
    /// cut comes while it writes to the socket, as the socket's (a broken pipe).
    /// </summary>
    private static bool IsConnectionLost(Exception ex) => ex is Renci.SshNet.Common.SshException or SocketException;

    /// <summary>How far the content may run ahead of the SFTP upload.</summary>
    private const int Window = 4 * 1024 * 1024;
}
