using ClusterBackup.Sources;
using ClusterBackup.Sources.Ssh;

namespace ClusterBackup.Restore;

/// <summary>A node over its SSH session: commands through sudo when configured, uploads over SFTP.</summary>
internal sealed class SshRestoreNode(NodeSession session) : IRestoreNode
{
    public async Task<RestoreCommandResult> RunAsync(string command, CancellationToken cancellationToken)
    {
        var result = await session.RunAsync(command, cancellationToken);
        return new RestoreCommandResult(result.ExitStatus, result.Output, result.ErrorSummary);
    }

    public async Task UploadAsync(string localFile, string remotePath, CancellationToken cancellationToken)
    {
        var ssh = session.Node.Ssh;
        if (!ssh.Sudo)
        {
            await SftpUploadAsync(localFile, remotePath, cancellationToken);
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
            await SftpUploadAsync(localFile, uploaded, cancellationToken);
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

    private async Task SftpUploadAsync(string localFile, string remotePath, CancellationToken cancellationToken)
    {
        try
        {
            using var sftp = await session.OpenSftpAsync(cancellationToken);
            await using var file = File.OpenRead(localFile);
            await sftp.UploadFileAsync(file, remotePath, cancellationToken);
            sftp.ChangePermissions(remotePath, 600); // SSH.NET reads the digits as octal: the snapshot holds every Secret
        }
        catch (Renci.SshNet.Common.SshException ex)
        {
            throw new IOException($"cannot upload {remotePath}: {ex.Message}", ex);
        }
        catch (IOException ex)
        {
            throw new IOException($"cannot upload {remotePath}: {ex.Message}", ex);
        }
    }
}
