using System.Globalization;
using ClusterBackup.Configuration;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Ssh;

namespace ClusterBackup.Restore;

/// <summary>A restore step on a node failed; the member was rolled back.</summary>
internal sealed class RestoreStepFailedException(string node, string step, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Node { get; } = node;

    public string Step { get; } = step;
}

/// <summary>
/// The runbook for one member, over SSH (PROCEDURE.md): stage the snapshot (and PKI), stop the
/// static pods by moving their manifests into staging, wait until etcd stopped, move the data dir
/// aside, <c>etcdctl snapshot restore</c> with the member's own flags, check <c>member/</c>; later,
/// move the manifests back and wait for health. Every command is printed instead in a dry run.
/// </summary>
internal sealed class MemberRestore(NodeSession session, string setId, string stamp, bool dryRun, TextWriter output)
{
    private readonly ControlPlaneSettings _node = session.Node;
    private bool _stopped;
    private bool _movedAside;
    private bool _restoreAttempted;

    public string Name => _node.Name;

    private string Staging => _node.Paths.Staging.TrimEnd('/');

    private string Manifests => _node.Paths.Manifests.TrimEnd('/');

    private string Data => _node.Paths.EtcdData.TrimEnd('/');

    private string Aside => $"{Data}.before-restore-{stamp}";

    private string SnapshotPath => $"{Staging}/snapshot-{setId}.db";

    /// <summary>Reads the member's etcd.yaml (from the manifests dir, or staging if a failed run left it there).</summary>
    public async Task<StaticPodFlags?> ReadFlagsAsync(CancellationToken cancellationToken)
    {
        var result = await session.RunAsync(NodeCommands.ReadFirstOf(Manifests + "/etcd.yaml", Staging + "/etcd.yaml"), cancellationToken);
        return result.Succeeded ? StaticPodFlags.Parse(result.Output) : null;
    }

    public async Task PrepareAsync(string? snapshotFile, bool restorePki, string? pkiTar, StaticPodFlags flags, string? backedUpManifest, CancellationToken cancellationToken)
    {
        await RunAsync("staging", NodeCommands.MakePrivateDirectory(Staging), cancellationToken);
        await UploadAsync("upload snapshot", snapshotFile, SnapshotPath, cancellationToken);
        if (restorePki)
        {
            var remote = $"{Staging}/pki-{setId}.tar";
            await UploadAsync("upload pki", pkiTar, remote, cancellationToken);
            await RunAsync("restore pki", NodeCommands.Untar(remote, _node.Paths.Pki), cancellationToken);
        }

        if (backedUpManifest is not null)
        {
            // The node lost its etcd.yaml: the backed-up one is what the start step moves in.
            await UploadAsync("stage the backed-up etcd.yaml", backedUpManifest, $"{Staging}/etcd.yaml", cancellationToken);
        }

        _stopped = true;
        await RunAsync("stop static pods", NodeCommands.MoveStaticPodManifests(Manifests, Staging), cancellationToken);
        await RunAsync("wait for etcd to stop", NodeCommands.WaitUntilNotListening(_node.Etcd.ClientPort), cancellationToken);
        await RunAsync("move the data dir aside", NodeCommands.MoveAsideIfPresent(Data, Aside), cancellationToken);
        _movedAside = true;
        _restoreAttempted = true;
        await RunAsync("etcdctl snapshot restore",
            NodeCommands.EtcdctlOffline(_node.Restore.Etcdctl, "snapshot", "restore", SnapshotPath, "--data-dir", Data, "--name", flags.Name,
                "--initial-cluster", flags.InitialCluster, "--initial-advertise-peer-urls", flags.InitialAdvertisePeerUrls),
            cancellationToken);
        await RunAsync("check the restored member dir", NodeCommands.TestDirectory(Data + "/member"), cancellationToken);
    }

    public Task StartAsync(CancellationToken cancellationToken) =>
        RunAsync("start static pods", NodeCommands.MoveStaticPodManifests(Staging, Manifests), cancellationToken);

    public Task WaitHealthyAsync(CancellationToken cancellationToken)
    {
        var health = NodeCommands.Etcdctl(_node.Restore.Etcdctl, _node, "--dial-timeout=2s", "--command-timeout=3s", "endpoint", "health");
        return RunAsync("wait for health", NodeCommands.WaitUntil(health, "etcd is not healthy after 120s"), cancellationToken);
    }

    /// <summary>Removes the decrypted snapshot and PKI archive from staging: they hold every Secret and the CA keys.</summary>
    public Task RemoveStagedFilesAsync(CancellationToken cancellationToken) =>
        RunAsync("remove staged files", NodeCommands.RemoveFiles(SnapshotPath, $"{Staging}/pki-{setId}.tar"), cancellationToken);

    /// <summary>Returns the member to how it was: partial restore removed, old data dir and manifests back.</summary>
    public async Task RollbackAsync()
    {
        if (dryRun)
        {
            return;
        }

        await session.RunAsync(NodeCommands.RemoveFiles(SnapshotPath, $"{Staging}/pki-{setId}.tar"), CancellationToken.None);

        if (_restoreAttempted)
        {
            var back = _movedAside ? NodeCommands.PutBack(Data, Aside) : NodeCommands.RemoveTree(Data);
            await session.RunAsync(back, CancellationToken.None);
        }

        if (_stopped)
        {
            await session.RunAsync(NodeCommands.MoveStaticPodManifests(Staging, Manifests), CancellationToken.None);
        }
    }

    private async Task RunAsync(string step, string command, CancellationToken cancellationToken)
    {
        if (dryRun)
        {
            await output.WriteLineAsync($"  [{Name}] {step}: {session.Privileged(command)}");
            return;
        }

        var result = await session.RunAsync(command, cancellationToken);
        if (!result.Succeeded)
        {
            throw new RestoreStepFailedException(Name, step, $"exit status {result.ExitStatus.ToString(CultureInfo.InvariantCulture)}: {result.ErrorSummary}");
        }
    }

    private async Task UploadAsync(string step, string? localFile, string remotePath, CancellationToken cancellationToken)
    {
        if (dryRun || localFile is null)
        {
            await output.WriteLineAsync($"  [{Name}] {step}: upload over SFTP to {remotePath}");
            return;
        }

        if (!_node.Ssh.Sudo)
        {
            await SftpUploadAsync(step, localFile, remotePath, cancellationToken);
            return;
        }

        // SFTP runs as the SSH user, who cannot write where root keeps things: upload into a private
        // dir the user owns, then move the file into place as root, owned by root.
        var made = await session.RunAsync(NodeCommands.MakeUploadDirectory(_node.Ssh.User), cancellationToken);
        var directory = made.Output.Trim();
        if (!made.Succeeded || !directory.StartsWith(NodeCommands.TempPrefix, StringComparison.Ordinal))
        {
            throw new RestoreStepFailedException(Name, step, $"cannot make an upload dir in /var/tmp: {made.ErrorSummary}");
        }

        try
        {
            var uploaded = $"{directory}/upload";
            await SftpUploadAsync(step, localFile, uploaded, cancellationToken);
            await RunAsync(step, NodeCommands.InstallAsRoot(uploaded, remotePath), cancellationToken);
        }
        finally
        {
            await session.RunAsync(NodeCommands.RemoveTree(directory), CancellationToken.None);
        }
    }

    private async Task SftpUploadAsync(string step, string localFile, string remotePath, CancellationToken cancellationToken)
    {
        try
        {
            using var sftp = await session.OpenSftpAsync(cancellationToken);
            await using var file = File.OpenRead(localFile);
            await sftp.UploadFileAsync(file, remotePath, cancellationToken);
            sftp.ChangePermissions(remotePath, 600); // SSH.NET reads the digits as octal: the snapshot holds every Secret
        }
        catch (Exception ex) when (ex is Renci.SshNet.Common.SshException or IOException)
        {
            throw new RestoreStepFailedException(Name, step, $"cannot upload {remotePath}: {ex.Message}", ex);
        }
    }

}
