using System.Formats.Tar;
using System.Globalization;
using System.Text;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Encryption;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Streams;

namespace ClusterBackup.Restore;

/// <summary>The restore refused to act; nothing was changed.</summary>
internal sealed class RestoreRefusedException(string message) : Exception(message);

/// <summary>
/// The I/O around the restore runbook: assesses every member over SSH (health, its etcd.yaml, or the
/// set's copy when the node lost it) for <see cref="RestorePlanner"/>; then fetches the set and hands
/// the plan to <see cref="RestoreExecutor"/> with each node's session. One SSH session per node for both.
/// </summary>
internal sealed class ClusterRestore(SshNodeConnector connector, SetDownloader downloader, RestoreExecutor executor, TimeProvider time)
    : IDisposable
{
    private readonly NodeSessions _sessions = new(connector);

    /// <summary>The stamp of the data dirs moved aside: the time of this restore.</summary>
    public string Stamp { get; } = time.GetUtcNow().ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Starts the SSH sessions to the cluster's control planes while the caller reads storage.</summary>
    public void ConnectAhead(ClusterSettings cluster, CancellationToken cancellationToken) => _sessions.ConnectAhead(cluster.ControlPlanes, cancellationToken);

    /// <summary>Assesses the cluster for a set whose signature was checked: every member at once, each over its own session.</summary>
    public async Task<RestoreAssessment> AssessAsync(ClusterSettings cluster, CatalogSet set, IReadOnlyList<AgeIdentity>? identities, CancellationToken cancellationToken)
    {
        var members = await Task.WhenAll(cluster.ControlPlanes.Select(node => AssessAsync(node, set, identities, cancellationToken)));
        return new RestoreAssessment(cluster, set, members);
    }

    public async Task<RestoreReport> ExecuteAsync(RestorePlan plan, IReadOnlyList<AgeIdentity>? identities, CancellationToken cancellationToken)
    {
        if (plan.Refusal is not null)
        {
            throw new InvalidOperationException("a refused plan is not executed");
        }

        SetDownloader.RequireIdentities(plan.Set.Manifest, identities);

        // The small archives are fetched and checked whole before any node is touched; the
        // snapshot streams from storage into every member's upload at once (see SnapshotContent).
        var files = new Dictionary<RestoreFile, RestoreContent>();
        foreach (var artifact in plan.Set.Manifest.Artifacts)
        {
            var file = artifact.Kind switch
            {
                ArtifactKinds.EtcdSnapshot => new RestoreFile(RestoreFileKind.Snapshot),
                ArtifactKinds.Pki => new RestoreFile(RestoreFileKind.Pki, artifact.Node),
                ArtifactKinds.Kubeconfigs => new RestoreFile(RestoreFileKind.Kubeconfigs, artifact.Node),
                ArtifactKinds.EncryptionConfig => new RestoreFile(RestoreFileKind.EncryptionConfig, artifact.Node),
                _ => null,
            };
            if (file is null || !plan.Steps.Any(s => s.Action is Upload upload && upload.File == file))
            {
                continue;
            }

            files[file] = file.Kind == RestoreFileKind.Snapshot
                ? SnapshotContent(plan, artifact, identities)
                : RestoreContent.FromBytes(SetDownloader.PlainName(artifact), await downloader.ReadAsync(plan.Set, artifact, identities, cancellationToken));
        }

        foreach (var member in plan.Assessment.Members.Where(m => m.BackedUpEtcdYaml is not null))
        {
            files[new RestoreFile(RestoreFileKind.EtcdYaml, member.Name)] = RestoreContent.FromBytes($"etcd-{member.Name}.yaml", Encoding.UTF8.GetBytes(member.BackedUpEtcdYaml!));
        }

        return await executor.ExecuteAsync(plan, ConnectAsync, files, cancellationToken);

        async Task<IRestoreNode> ConnectAsync(string name, CancellationToken ct) =>
            new SshRestoreNode(await _sessions.GetAsync(plan.Cluster.ControlPlanes.First(cp => cp.Name == name), ct));
    }

    public void Dispose() => _sessions.Dispose();

    /// <summary>
    /// The snapshot, streamed from storage as it is decrypted, decompressed and checked (a mismatch
    /// fails the upload, which is then undone). With several members, their uploads run at once and
    /// share one stream: the set is downloaded once, and nothing of it is written on this machine.
    /// </summary>
    private RestoreContent SnapshotContent(RestorePlan plan, ArtifactRecord artifact, IReadOnlyList<AgeIdentity>? identities)
    {
        var uploads = plan.Steps.Count(s => s.Action is Upload { File.Kind: RestoreFileKind.Snapshot });
        var description = $"{SetDownloader.PlainName(artifact)} of set {plan.Set.Id}";
        Task Extract(Stream destination, CancellationToken cancellationToken) =>
            downloader.ExtractAsync(plan.Set, artifact, destination, identities, cancellationToken);
        return uploads <= 1 ? new RestoreContent(description, Extract) : RestoreContent.Shared(description, uploads, Extract);
    }

    private async Task<MemberAssessment> AssessAsync(ControlPlaneSettings node, CatalogSet set, IReadOnlyList<AgeIdentity>? identities, CancellationToken cancellationToken)
    {
        NodeSession session;
        try
        {
            session = await _sessions.GetAsync(node, cancellationToken);
        }
        catch (NodeOperationException ex)
        {
            return new MemberAssessment(node.Name, false, false, ex.Message);
        }

        var probe = await session.RunAsync(
            NodeCommands.IfListening(node.Etcd.ClientPort, NodeCommands.Etcdctl(node.Etcd.Etcdctl, node, "--dial-timeout=3s", "--command-timeout=5s", "endpoint", "health")),
            cancellationToken);
        // What the restore will write, and where: its free space, a data dir that is a volume of its own, what killed restores left.
        var measured = RestoreSpace.PathsToMeasure(node);
        var df = await session.RunAsync(NodeCommands.FreeSpace(measured), cancellationToken);
        var mountPoint = (await session.RunAsync(NodeCommands.IsMountPoint(node.Paths.EtcdData.TrimEnd('/')), cancellationToken)).Succeeded;
        var leftovers = await session.RunAsync(NodeCommands.LeftoverRestoresKiB(RestoreSpace.RestoredPrefix(node, mountPoint)), cancellationToken);
        var member = new MemberAssessment(node.Name, true, probe.Succeeded, probe.Succeeded ? "endpoint health ok" : probe.ErrorSummary)
        {
            Space = df.Succeeded ? FreeSpace.Parse(df.Output, measured) : null,
            DataDirIsMountPoint = mountPoint,
            LeftoverBytes = FreeSpace.Bytes(leftovers.Output.Trim()) ?? 0,
        };

        // etcd.yaml from the manifests dir, or from staging if a failed run left it there.
        var paths = node.Paths;
        var read = await session.RunAsync(NodeCommands.ReadFirstOf(paths.Manifests.TrimEnd('/') + "/etcd.yaml", paths.Staging.TrimEnd('/') + "/etcd.yaml"), cancellationToken);
        var flags = read.Succeeded ? StaticPodFlags.Parse(read.Output) : null;
        if (flags is not null)
        {
            return member with { Flags = flags };
        }

        // The node lost etcd.yaml: take it from the set's manifests archive of this node.
        var archive = set.Manifest.Artifacts.FirstOrDefault(a => a.Kind == ArtifactKinds.Manifests && a.Node == node.Name);
        if (archive is null)
        {
            return member with { FlagsProblem = "etcd.yaml is not on the node and not in the set" };
        }

        try
        {
            var backedUp = ReadEtcdYaml(await downloader.ReadAsync(set, archive, identities, cancellationToken));
            flags = backedUp is null ? null : StaticPodFlags.Parse(backedUp);
            return flags is null
                ? member with { FlagsProblem = $"etcd.yaml is not on the node, and the set's {archive.Name} holds no etcd.yaml with them" }
                : member with { Flags = flags, BackedUpEtcdYaml = backedUp };
        }
        catch (DownloadFailedException ex)
        {
            return member with { FlagsProblem = $"etcd.yaml is not on the node, and the set's copy cannot be read: {ex.Message}" };
        }
    }

    private static string? ReadEtcdYaml(byte[] archive)
    {
        using var reader = new TarReader(new MemoryStream(archive));
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.Name.TrimStart('.', '/') == "etcd.yaml" && entry.DataStream is not null)
            {
                using var text = new StreamReader(entry.DataStream, Encoding.UTF8);
                return text.ReadToEnd();
            }
        }

        return null;
    }
}
