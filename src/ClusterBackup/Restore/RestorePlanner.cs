using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Sources;

namespace ClusterBackup.Restore;

/// <summary>Which members a restore takes, and why; <see cref="Refusal"/> set when it will not.</summary>
internal sealed record RestoreDecision(IReadOnlyList<string> Members, string Reason, string? Refusal);

/// <summary>
/// Turns an assessment into a <see cref="RestorePlan"/>, with no I/O. Which members (PROCEDURE.md,
/// with DESIGN.md's departure): not HA, the member; HA with quorum, nothing (replace failed members
/// instead) unless members are named and forced; HA without quorum, every member from the same
/// snapshot. A member whose filesystems cannot hold what its restore writes refuses the restore
/// (<see cref="RestoreSpace"/>). Then, per member, the runbook's steps with their undo: stage the snapshot (and PKI),
/// stop the static pods by moving their manifests into staging, <c>etcdctl snapshot restore</c> with
/// the member's own flags into a new dir beside the data dir, check its <c>member/</c>, wait until
/// etcd stopped, move the data dir aside and the restored one in its place (inside the data dir,
/// its <c>member/</c>, when the data dir is a mount point); only when every member
/// is prepared, move the manifests back and wait for health.
/// </summary>
internal static class RestorePlanner
{
    public static RestorePlan Plan(RestoreAssessment assessment, RestoreRequest options, string stamp)
    {
        var decision = Decide(assessment.Members, options.Members, options.Force);
        if (decision.Refusal is { } refusal)
        {
            return RestorePlan.Refused(assessment, refusal);
        }

        var members = decision.Members.Select(name => (Node: assessment.Cluster.ControlPlanes.First(cp => cp.Name == name), Found: assessment.Members.First(m => m.Name == name))).ToList();
        foreach (var (node, found) in members)
        {
            if (found.Flags is null)
            {
                return RestorePlan.Refused(assessment,
                    $"node {node.Name}: {found.FlagsProblem ?? "etcd.yaml is not on the node"}: --name, --initial-cluster and --initial-advertise-peer-urls are unknown");
            }

            if (options.Pki && !assessment.Set.Manifest.Artifacts.Any(a => a.Kind == ArtifactKinds.Pki && a.Node == node.Name))
            {
                return RestorePlan.Refused(assessment, $"node {node.Name}: the set has no PKI archive of {node.Name}; restore without --pki, or from another set");
            }
        }

        var artifacts = assessment.Set.Manifest.Artifacts;
        var snapshot = artifacts.FirstOrDefault(a => a.Kind == ArtifactKinds.EtcdSnapshot)?.PlainSize ?? 0;
        var shortOfSpace = members
            .Select(m => RestoreSpace.Shortfall(
                m.Node, m.Found, snapshot, options.Pki ? SizeOf(ArtifactKinds.Pki, m.Node.Name) : 0, Kubeconfigs(m.Node) is null ? 0 : SizeOf(ArtifactKinds.Kubeconfigs, m.Node.Name)))
            .OfType<string>().ToList();
        if (shortOfSpace.Count > 0)
        {
            return RestorePlan.Refused(assessment, string.Join("; and ", shortOfSpace));
        }

        var setId = assessment.Set.Id.ToString();
        var steps = new List<RestoreStep>();
        foreach (var (node, found) in members)
        {
            steps.AddRange(Prepare(new MemberPaths(node, setId, stamp, found.DataDirIsMountPoint), found, options.Pki, Kubeconfigs(node), EncryptionConfig(node)));
        }

        foreach (var (node, found) in members)
        {
            var paths = new MemberPaths(node, setId, stamp, found.DataDirIsMountPoint);
            var left = $"every member was prepared; the manifests of the members not yet started are in their {paths.Staging}";
            steps.Add(new RestoreStep(node.Name, RestoreStepKind.StartStaticPods, RestorePhase.Start,
                new RemoteCommand(NodeCommands.MoveStaticPodManifests(paths.Staging, paths.Manifests))) { LeftInPlace = left });
            steps.Add(new RestoreStep(node.Name, RestoreStepKind.RemoveStagedFiles, RestorePhase.Start,
                new RemoteCommand(NodeCommands.RemoveFiles(paths.Snapshot, paths.PkiArchive, paths.KubeconfigsArchive, paths.EncryptionConfigArchive))) { LeftInPlace = left });
        }

        foreach (var (node, found) in members)
        {
            var paths = new MemberPaths(node, setId, stamp, found.DataDirIsMountPoint);
            // Until etcd listens, each try fails at once instead of waiting out etcdctl's dial timeout.
            var health = NodeCommands.IfListening(
                node.Etcd.ClientPort, NodeCommands.Etcdctl(node.Restore.Etcdctl, node, "--dial-timeout=2s", "--command-timeout=3s", "endpoint", "health"));
            steps.Add(new RestoreStep(node.Name, RestoreStepKind.WaitForHealth, RestorePhase.Verify,
                new RemoteCommand(NodeCommands.WaitUntil(health, "etcd is not healthy after 120s")))
            {
                LeftInPlace = $"the restored data is in place and the old data is kept as {paths.Aside}",
            });
        }

        return new RestorePlan(assessment, decision.Members, decision.Reason, steps, Report(assessment, members.Select(m => m.Node).ToList()), null);

        long SizeOf(string kind, string node) => artifacts.FirstOrDefault(a => a.Kind == kind && a.Node == node)?.PlainSize ?? 0;

        // Sets of earlier versions have no kubeconfigs archive; a node that had none has nothing to put back.
        IReadOnlyList<string>? Kubeconfigs(ControlPlaneSettings node) =>
            options.Pki && artifacts.FirstOrDefault(a => a.Kind == ArtifactKinds.Kubeconfigs && a.Node == node.Name)?.Files is { Count: > 0 } files ? files : null;

        // kube-apiserver's EncryptionConfiguration, when the set holds it (a file outside the PKI dir).
        string? EncryptionConfig(ControlPlaneSettings node) =>
            options.Pki && artifacts.FirstOrDefault(a => a.Kind == ArtifactKinds.EncryptionConfig && a.Node == node.Name) is { Path: { } path, Files.Count: > 0 } ? path : null;
    }

    public static RestoreDecision Decide(IReadOnlyList<MemberAssessment> members, IReadOnlyCollection<string> requested, bool force)
    {
        var unknown = requested.Where(r => members.All(m => m.Name != r)).ToList();
        if (unknown.Count > 0)
        {
            return Refuse($"--member {string.Join(", ", unknown)} is not a control plane of this cluster ({string.Join(", ", members.Select(m => m.Name))})");
        }

        var unreachable = members.Where(m => !m.Reachable).Select(m => m.Name).ToList();
        var healthy = members.Count(m => m.Healthy);
        var all = members.Select(m => m.Name).ToList();
        if (members.Count == 1)
        {
            return unreachable.Count > 0
                ? Refuse($"{unreachable[0]} cannot be reached over SSH: {members[0].Detail}")
                : new RestoreDecision(all, $"not HA: restoring the only member, {all[0]}" + (healthy == 1 ? " (it is healthy: its data is replaced by the set's)" : string.Empty), null);
        }

        var quorum = healthy > members.Count / 2;
        if (quorum)
        {
            if (requested.Count > 0 && force)
            {
                var unreachableRequested = requested.Where(unreachable.Contains).ToList();
                return unreachableRequested.Count > 0
                    ? Refuse($"{string.Join(", ", unreachableRequested)} cannot be reached over SSH")
                    : new RestoreDecision(requested.ToList(),
                        $"quorum holds ({healthy} of {members.Count} healthy), but --force restores {string.Join(", ", requested)} as asked; they start a new cluster from the snapshot", null);
            }

            return Refuse($"quorum holds ({healthy} of {members.Count} members healthy), so etcd keeps serving: replace the failed members instead " +
                          "(etcdctl member remove, then member add and a fresh data dir), which keeps every write since the backup. " +
                          "To restore anyway, name the members with --member and add --force");
        }

        if (unreachable.Count > 0)
        {
            return Refuse($"quorum is lost and every member must be restored, but {string.Join(", ", unreachable)} cannot be reached over SSH");
        }

        if (requested.Count > 0 && requested.Count != members.Count)
        {
            return Refuse($"quorum is lost ({healthy} of {members.Count} healthy): every member must be restored from the same snapshot, not only {string.Join(", ", requested)}");
        }

        return new RestoreDecision(all,
            $"quorum is lost ({healthy} of {members.Count} healthy): restoring every member, survivors included, from the same snapshot " +
            "with the full --initial-cluster, because a restore starts a new cluster that members with other data cannot join", null);
    }

    private static IEnumerable<RestoreStep> Prepare(MemberPaths paths, MemberAssessment found, bool pki, IReadOnlyList<string>? kubeconfigs, string? encryptionConfig)
    {
        var node = paths.Node;
        var name = node.Name;
        yield return Step(RestoreStepKind.Staging, NodeCommands.MakePrivateDirectory(paths.Staging));
        yield return new RestoreStep(name, RestoreStepKind.UploadSnapshot, RestorePhase.Prepare, new Upload(new RestoreFile(RestoreFileKind.Snapshot), paths.Snapshot),
            new RestoreUndo(NodeCommands.RemoveFiles(paths.Snapshot), UndoWhen.Attempted));
        if (pki)
        {
            yield return new RestoreStep(name, RestoreStepKind.UploadPki, RestorePhase.Prepare, new Upload(new RestoreFile(RestoreFileKind.Pki, name), paths.PkiArchive),
                new RestoreUndo(NodeCommands.RemoveFiles(paths.PkiArchive), UndoWhen.Attempted));
            yield return Step(RestoreStepKind.CopyPkiAside, NodeCommands.CopyAsideIfPresent(paths.Pki, paths.PkiAside),
                new RestoreUndo(NodeCommands.PutBack(paths.Pki, paths.PkiAside), UndoWhen.Completed));
            yield return Step(RestoreStepKind.RestorePki, NodeCommands.Untar(paths.PkiArchive, paths.Pki));
        }

        if (kubeconfigs is not null)
        {
            // Only the files the archive holds are copied aside and replaced: the rest of the directory stays.
            yield return new RestoreStep(name, RestoreStepKind.UploadKubeconfigs, RestorePhase.Prepare,
                new Upload(new RestoreFile(RestoreFileKind.Kubeconfigs, name), paths.KubeconfigsArchive),
                new RestoreUndo(NodeCommands.RemoveFiles(paths.KubeconfigsArchive), UndoWhen.Attempted));
            yield return Step(RestoreStepKind.CopyKubeconfigsAside, NodeCommands.CopyFilesAside(paths.Kubeconfigs, kubeconfigs, paths.KubeconfigsAside),
                new RestoreUndo(NodeCommands.PutFilesBack(paths.Kubeconfigs, kubeconfigs, paths.KubeconfigsAside), UndoWhen.Completed));
            yield return Step(RestoreStepKind.RestoreKubeconfigs, NodeCommands.Untar(paths.KubeconfigsArchive, paths.Kubeconfigs));
        }

        if (encryptionConfig is not null)
        {
            // Without it, the restored Secrets cannot be read: its keys encrypted them in etcd.
            var (directory, file) = (Path.GetDirectoryName(encryptionConfig)!, Path.GetFileName(encryptionConfig));
            yield return new RestoreStep(name, RestoreStepKind.UploadEncryptionConfig, RestorePhase.Prepare,
                new Upload(new RestoreFile(RestoreFileKind.EncryptionConfig, name), paths.EncryptionConfigArchive),
                new RestoreUndo(NodeCommands.RemoveFiles(paths.EncryptionConfigArchive), UndoWhen.Attempted));
            yield return Step(RestoreStepKind.CopyEncryptionConfigAside, NodeCommands.CopyFilesAside(directory, [file], paths.EncryptionConfigAside),
                new RestoreUndo(NodeCommands.PutFilesBack(directory, [file], paths.EncryptionConfigAside), UndoWhen.Completed));
            yield return Step(RestoreStepKind.RestoreEncryptionConfig, NodeCommands.Untar(paths.EncryptionConfigArchive, directory));
        }

        // Undone after (so before) the manifests go back: a node that had no etcd.yaml gets none.
        yield return Step(RestoreStepKind.StopStaticPods, NodeCommands.MoveStaticPodManifests(paths.Manifests, paths.Staging),
            new RestoreUndo(NodeCommands.MoveStaticPodManifests(paths.Staging, paths.Manifests), UndoWhen.Attempted));
        if (found.BackedUpEtcdYaml is not null)
        {
            // The node lost its etcd.yaml: the backed-up one is what the start step moves in.
            var staged = $"{paths.Staging}/etcd.yaml";
            yield return new RestoreStep(name, RestoreStepKind.StageBackedUpEtcdYaml, RestorePhase.Prepare, new Upload(new RestoreFile(RestoreFileKind.EtcdYaml, name), staged),
                new RestoreUndo(NodeCommands.RemoveFiles(staged), UndoWhen.Attempted));
        }

        // etcdctl writes a new dir beside the data dir, which no etcd uses: an etcd that the kubelet
        // restarts meanwhile (it may not have noticed its manifest is gone) cannot touch it.
        // A restore killed before its end (the agent, or its machine) leaves such a dir; nothing runs on it.
        yield return Step(RestoreStepKind.RemoveLeftoverRestores, NodeCommands.RemoveLeftoverRestores(paths.RestoredPrefix));
        var flags = found.Flags!;
        yield return Step(RestoreStepKind.SnapshotRestore,
            NodeCommands.EtcdctlOffline(node.Restore.Etcdctl, "snapshot", "restore", paths.Snapshot, "--data-dir", paths.Restored, "--name", flags.Name,
                "--initial-cluster", flags.InitialCluster, "--initial-advertise-peer-urls", flags.InitialAdvertisePeerUrls),
            new RestoreUndo(NodeCommands.RemoveTree(paths.Restored), UndoWhen.Attempted));
        yield return Step(RestoreStepKind.CheckMemberDir, NodeCommands.TestDirectory(paths.Restored + "/member"));
        yield return Step(RestoreStepKind.WaitForEtcdToStop, NodeCommands.WaitUntilEtcdStopped(node.Etcd.ClientPort, paths.Data));

        // Undone only once done: put back removes whatever is at the data dir, which must be the restore's.
        yield return Step(RestoreStepKind.MoveDataDirAside, NodeCommands.MoveAsideIfPresent(paths.Replaced, paths.Aside),
            new RestoreUndo(NodeCommands.PutBack(paths.Replaced, paths.Aside), UndoWhen.Completed));
        yield return Step(RestoreStepKind.PutRestoredDataDirInPlace, paths.InsideDataDir
            ? NodeCommands.MoveIntoPlace(paths.Restored + "/member", paths.Replaced, thenEmpty: paths.Restored)
            : NodeCommands.MoveIntoPlace(paths.Restored, paths.Data));

        RestoreStep Step(RestoreStepKind kind, string command, RestoreUndo? undo = null) =>
            new(name, kind, RestorePhase.Prepare, new RemoteCommand(command), undo);
    }

    private static List<ReportQuery> Report(RestoreAssessment assessment, IReadOnlyList<ControlPlaneSettings> restored)
    {
        var first = restored[0];
        var endpoints = string.Join(',', restored.Select(cp => $"https://127.0.0.1:{cp.Etcd.ClientPort}"));
        var runner = first.Restore.Etcdctl;
        var manifest = assessment.Set.Manifest;
        return
        [
            new(first.Name, "endpoint health:", NodeCommands.EtcdctlAt(runner, first.Paths, endpoints, "endpoint", "health") + " 2>&1"),
            new(first.Name, "member list:", NodeCommands.Etcdctl(runner, first, "member", "list")),
            new(first.Name, $"restored set {assessment.Set.Id}: etcd revision {manifest.Etcd.Revision} at backup time", NodeCommands.Etcdctl(runner, first, "endpoint", "status", "-w", "table")),
        ];
    }

    private static RestoreDecision Refuse(string reason) => new([], string.Empty, reason);

    /// <summary>
    /// Where a member's restore puts things. A data dir that is a mount point (a volume of its own)
    /// cannot be renamed: then etcdctl restores into a dir inside it, and its <c>member/</c> is what
    /// is moved aside and replaced (<see cref="InsideDataDir"/>).
    /// </summary>
    private sealed record MemberPaths(ControlPlaneSettings Node, string SetId, string Stamp, bool InsideDataDir)
    {
        public string Staging => Node.Paths.Staging.TrimEnd('/');

        public string Manifests => Node.Paths.Manifests.TrimEnd('/');

        public string Data => Node.Paths.EtcdData.TrimEnd('/');

        /// <summary>What the restored data replaces: the data dir, or its <c>member/</c>.</summary>
        public string Replaced => InsideDataDir ? $"{Data}/member" : Data;

        public string Aside => $"{Replaced}.before-restore-{Stamp}";

        public string RestoredPrefix => RestoreSpace.RestoredPrefix(Node, InsideDataDir);

        public string Restored => RestoredPrefix + Stamp;

        public string Pki => Node.Paths.Pki.TrimEnd('/');

        public string PkiAside => $"{Pki}.before-restore-{Stamp}";

        public string Snapshot => $"{Staging}/snapshot-{SetId}.db";

        public string PkiArchive => $"{Staging}/pki-{SetId}.tar";

        public string Kubeconfigs => Node.Paths.Kubeconfigs.TrimEnd('/') is { Length: > 0 } dir ? dir : "/";

        public string KubeconfigsAside => $"{Staging}/kubeconfigs.before-restore-{Stamp}";

        public string KubeconfigsArchive => $"{Staging}/kubeconfigs-{SetId}.tar";

        public string EncryptionConfigAside => $"{Staging}/encryption-config.before-restore-{Stamp}";

        public string EncryptionConfigArchive => $"{Staging}/encryption-config-{SetId}.tar";
    }
}
