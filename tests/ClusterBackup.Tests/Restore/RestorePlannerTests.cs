using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Restore;
using ClusterBackup.Sources;

namespace ClusterBackup.Tests.Restore;

/// <summary>The restore runbook as a plan: which members, which steps and undos, with no node in sight.</summary>
public sealed class RestorePlannerTests
{
    private const string Stamp = Assessments.Stamp;

    private static MemberAssessment Member(int i, int members, bool healthy, bool reachable = true) => Assessments.Member(i, members, healthy, reachable);

    private static RestoreAssessment Assess(params MemberAssessment[] members) => Assessments.Of(members);

    private static RestorePlan Plan(RestoreAssessment assessment, bool pki = false, bool force = false, params string[] members) =>
        RestorePlanner.Plan(assessment, new RestoreRequest(members, force, pki), Stamp);

    private static string[] Kinds(RestorePlan plan, string node) =>
        plan.Steps.Where(s => s.Node == node).Select(s => s.Kind.Describe()).ToArray();

    private static string Command(RestorePlan plan, string node, RestoreStepKind kind) =>
        ((RemoteCommand)plan.Steps.Single(s => s.Node == node && s.Kind == kind).Action).Command;

    [Fact]
    public void Not_HA_restores_the_only_member_with_the_runbooks_steps_in_order()
    {
        var plan = Plan(Assess(Member(1, 1, healthy: false)));

        Assert.Null(plan.Refusal);
        Assert.Equal(["cp1"], plan.Members);
        Assert.Equal("not HA: restoring the only member, cp1", plan.Reason);
        Assert.Equal(
            ["staging", "upload snapshot", "stop static pods", "remove what killed restores left", "etcdctl snapshot restore", "check the restored member dir", "wait for etcd to stop",
             "move the data dir aside", "put the restored data dir in place", "start static pods", "remove staged files", "wait for health"],
            Kinds(plan, "cp1"));
        Assert.Equal(
            "if [ -e /var/lib/etcd ]; then mv /var/lib/etcd /var/lib/etcd.before-restore-20261127T010203Z; fi",
            Command(plan, "cp1", RestoreStepKind.MoveDataDirAside));
        var aside = plan.Steps.Single(s => s.Kind == RestoreStepKind.MoveDataDirAside).Undo!;
        Assert.Equal(UndoWhen.Completed, aside.When);
        Assert.Contains("mv /var/lib/etcd.before-restore-20261127T010203Z /var/lib/etcd", aside.Command, StringComparison.Ordinal);
        Assert.Equal(
            "if [ -e /var/lib/etcd ]; then echo '/var/lib/etcd exists again: something made it after etcd stopped' >&2; exit 1; fi; " +
            "mv /var/lib/etcd.restored-20261127T010203Z /var/lib/etcd",
            Command(plan, "cp1", RestoreStepKind.PutRestoredDataDirInPlace));
        Assert.Equal("test -d /var/lib/etcd.restored-20261127T010203Z/member", Command(plan, "cp1", RestoreStepKind.CheckMemberDir));
        Assert.Equal("rm -rf /var/lib/etcd.restored-*", Command(plan, "cp1", RestoreStepKind.RemoveLeftoverRestores));
        Assert.Equal(new RestoreUndo("rm -rf /var/lib/etcd.restored-20261127T010203Z", UndoWhen.Attempted), plan.Steps.Single(s => s.Kind == RestoreStepKind.SnapshotRestore).Undo);
        Assert.Equal(new Upload(new RestoreFile(RestoreFileKind.Snapshot), "/backup/snapshot-20261126T221408Z.db"),
            plan.Steps.Single(s => s.Kind == RestoreStepKind.UploadSnapshot).Action);
        Assert.All(plan.Steps.Where(s => s.Phase != RestorePhase.Prepare), s => Assert.Null(s.Undo));
        Assert.Equal(["endpoint health:", "member list:", "restored set 20261126T221408Z: etcd revision 42 at backup time"], plan.Report.Select(r => r.Heading));
    }

    [Fact]
    public void A_healthy_single_member_is_restored_and_the_reason_says_its_data_is_replaced()
    {
        var plan = Plan(Assess(Member(1, 1, healthy: true)));

        Assert.Equal("not HA: restoring the only member, cp1 (it is healthy: its data is replaced by the set's)", plan.Reason);
    }

    [Fact]
    public void A_data_dir_that_is_a_mount_point_keeps_its_place_and_its_member_dir_is_replaced_inside_it()
    {
        var plan = Plan(Assess(Member(1, 1, healthy: false) with { DataDirIsMountPoint = true }));

        Assert.Null(plan.Refusal);
        Assert.Equal("rm -rf /var/lib/etcd/.restored-*", Command(plan, "cp1", RestoreStepKind.RemoveLeftoverRestores));
        Assert.Contains("--data-dir /var/lib/etcd/.restored-20261127T010203Z --name cp1", Command(plan, "cp1", RestoreStepKind.SnapshotRestore), StringComparison.Ordinal);
        Assert.Equal(new RestoreUndo("rm -rf /var/lib/etcd/.restored-20261127T010203Z", UndoWhen.Attempted), plan.Steps.Single(s => s.Kind == RestoreStepKind.SnapshotRestore).Undo);
        Assert.Equal("test -d /var/lib/etcd/.restored-20261127T010203Z/member", Command(plan, "cp1", RestoreStepKind.CheckMemberDir));
        Assert.Equal(
            "if [ -e /var/lib/etcd/member ]; then mv /var/lib/etcd/member /var/lib/etcd/member.before-restore-20261127T010203Z; fi",
            Command(plan, "cp1", RestoreStepKind.MoveDataDirAside));
        Assert.Contains("mv /var/lib/etcd/member.before-restore-20261127T010203Z /var/lib/etcd/member",
            plan.Steps.Single(s => s.Kind == RestoreStepKind.MoveDataDirAside).Undo!.Command, StringComparison.Ordinal);
        Assert.Equal(
            "if [ -e /var/lib/etcd/member ]; then echo '/var/lib/etcd/member exists again: something made it after etcd stopped' >&2; exit 1; fi; " +
            "mv /var/lib/etcd/.restored-20261127T010203Z/member /var/lib/etcd/member && rmdir /var/lib/etcd/.restored-20261127T010203Z",
            Command(plan, "cp1", RestoreStepKind.PutRestoredDataDirInPlace));
        Assert.Contains("data-dir=/var/lib/etcd/*", Command(plan, "cp1", RestoreStepKind.WaitForEtcdToStop), StringComparison.Ordinal);
    }

    [Fact]
    public void A_member_whose_filesystems_cannot_hold_the_restore_refuses_it_before_any_step()
    {
        var paths = RestoreSpace.PathsToMeasure(Assess(Member(1, 1, healthy: false)).Cluster.ControlPlanes[0]);
        MemberAssessment WithFree(MemberAssessment member, long free) =>
            member with { Space = paths.ToDictionary(p => p, _ => new FreeSpace("/", 1L << 40, free)) };

        var plan = Plan(Assess(WithFree(Member(1, 2, healthy: false), 1L << 30), WithFree(Member(2, 2, healthy: false), 0)));

        Assert.Empty(plan.Steps);
        Assert.Equal(
            "node cp2: not enough free space: / has 0.0 MiB free, and the restore needs 64.0 MiB there " +
            "(the snapshot and archives staged in /backup: 0.0 MiB, the restored data dir beside /var/lib/etcd: 64.0 MiB); " +
            "free space there, or set Paths.Staging to a filesystem with room",
            plan.Refusal);
        Assert.Null(Plan(Assess(WithFree(Member(1, 2, healthy: false), 1L << 30), WithFree(Member(2, 2, healthy: false), 1L << 30))).Refusal);
    }

    [Fact]
    public void HA_with_quorum_is_refused_with_the_advice_to_replace_members()
    {
        var plan = Plan(Assess(Member(1, 3, true), Member(2, 3, true), Member(3, 3, false)));

        Assert.Empty(plan.Steps);
        Assert.StartsWith("quorum holds (2 of 3 members healthy), so etcd keeps serving: replace the failed members instead", plan.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void HA_with_quorum_and_a_member_named_without_force_is_refused()
    {
        var plan = Plan(Assess(Member(1, 3, true), Member(2, 3, true), Member(3, 3, false)), members: "cp3");

        Assert.NotNull(plan.Refusal);
        Assert.Contains("add --force", plan.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void HA_with_quorum_restores_only_the_members_named_with_force()
    {
        var plan = Plan(Assess(Member(1, 3, true), Member(2, 3, true), Member(3, 3, false)), force: true, members: "cp3");

        Assert.Null(plan.Refusal);
        Assert.Equal(["cp3"], plan.Members);
        Assert.Equal(["cp3"], plan.Steps.Select(s => s.Node).Distinct());
        Assert.StartsWith("quorum holds (2 of 3 healthy), but --force restores cp3 as asked", plan.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_member_that_is_not_a_control_plane_is_refused()
    {
        var plan = Plan(Assess(Member(1, 3, false), Member(2, 3, false), Member(3, 3, false)), force: true, members: "cp9");

        Assert.Equal("--member cp9 is not a control plane of this cluster (cp1, cp2, cp3)", plan.Refusal);
    }

    [Fact]
    public void Quorum_lost_restores_every_member_from_the_same_snapshot_with_the_full_initial_cluster_and_starts_none_before_all_are_prepared()
    {
        var plan = Plan(Assess(Member(1, 3, true), Member(2, 3, false), Member(3, 3, false)));

        Assert.Null(plan.Refusal);
        Assert.Equal(["cp1", "cp2", "cp3"], plan.Members);
        Assert.StartsWith("quorum is lost (1 of 3 healthy): restoring every member, survivors included", plan.Reason, StringComparison.Ordinal);
        foreach (var i in new[] { 1, 2, 3 })
        {
            Assert.Equal(
                "ETCDCTL_API=3 etcdctl snapshot restore /backup/snapshot-20261126T221408Z.db --data-dir /var/lib/etcd.restored-20261127T010203Z " +
                $"--name cp{i} --initial-cluster cp1=https://10.0.0.1:2380,cp2=https://10.0.0.2:2380,cp3=https://10.0.0.3:2380 " +
                $"--initial-advertise-peer-urls https://10.0.0.{i}:2380",
                Command(plan, $"cp{i}", RestoreStepKind.SnapshotRestore));
        }

        var lastPrepare = plan.Steps.ToList().FindLastIndex(s => s.Phase == RestorePhase.Prepare);
        var firstStart = plan.Steps.ToList().FindIndex(s => s.Kind == RestoreStepKind.StartStaticPods);
        Assert.Equal(lastPrepare + 1, firstStart);
        Assert.Equal(["cp1", "cp2", "cp3"], plan.Steps.Where(s => s.Kind == RestoreStepKind.WaitForHealth).Select(s => s.Node));
        Assert.Contains("--endpoints=https://127.0.0.1:2379,https://127.0.0.1:2379", plan.Report[0].Command, StringComparison.Ordinal);
    }

    [Fact]
    public void Quorum_lost_with_a_member_unreachable_or_only_some_named_is_refused()
    {
        var unreachable = Plan(Assess(Member(1, 3, false), Member(2, 3, false), Member(3, 3, false, reachable: false)));
        var some = Plan(Assess(Member(1, 3, false), Member(2, 3, false), Member(3, 3, false)), force: true, members: "cp2");

        Assert.Equal("quorum is lost and every member must be restored, but cp3 cannot be reached over SSH", unreachable.Refusal);
        Assert.StartsWith("quorum is lost (0 of 3 healthy): every member must be restored from the same snapshot, not only cp2", some.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void Pki_uploads_and_extracts_each_nodes_archive_before_the_static_pods_stop()
    {
        var plan = Plan(Assess(Member(1, 1, false)), pki: true);

        Assert.Equal(["staging", "upload snapshot", "upload pki", "copy the pki aside", "restore pki", "stop static pods"], Kinds(plan, "cp1").Take(6));
        Assert.Equal(
            new RestoreUndo(
                "if [ -e /etc/kubernetes/pki.before-restore-20261127T010203Z ]; then rm -rf /etc/kubernetes/pki && mv /etc/kubernetes/pki.before-restore-20261127T010203Z /etc/kubernetes/pki; else rm -rf /etc/kubernetes/pki; fi",
                UndoWhen.Completed),
            plan.Steps.Single(s => s.Kind == RestoreStepKind.CopyPkiAside).Undo);
        Assert.Equal(new Upload(new RestoreFile(RestoreFileKind.Pki, "cp1"), "/backup/pki-20261126T221408Z.tar"),
            plan.Steps.Single(s => s.Kind == RestoreStepKind.UploadPki).Action);
        Assert.Equal("mkdir -p /etc/kubernetes/pki && tar -xpf /backup/pki-20261126T221408Z.tar -C /etc/kubernetes/pki",
            Command(plan, "cp1", RestoreStepKind.RestorePki));
    }

    [Fact]
    public void Pki_puts_back_the_kubeconfigs_the_set_holds_copying_aside_only_those_files()
    {
        var assessment = Assess(Member(1, 1, false));
        RestoreAssessment With(IReadOnlyList<string> files) => WithArtifact(assessment, ArtifactKinds.Kubeconfigs, files);

        var plan = Plan(With(["admin.conf", "scheduler.conf"]), pki: true);

        Assert.Equal(["staging", "upload snapshot", "upload pki", "copy the pki aside", "restore pki", "upload kubeconfigs", "copy the kubeconfigs aside", "restore kubeconfigs", "stop static pods"],
            Kinds(plan, "cp1").Take(9));
        Assert.Equal(new Upload(new RestoreFile(RestoreFileKind.Kubeconfigs, "cp1"), "/backup/kubeconfigs-20261126T221408Z.tar"),
            plan.Steps.Single(s => s.Kind == RestoreStepKind.UploadKubeconfigs).Action);
        Assert.Equal(
            "mkdir -p /backup/kubeconfigs.before-restore-20261127T010203Z && for f in admin.conf scheduler.conf; do if [ -e /etc/kubernetes/\"$f\" ]; " +
            "then cp -a /etc/kubernetes/\"$f\" /backup/kubeconfigs.before-restore-20261127T010203Z/ || exit 1; fi; done",
            Command(plan, "cp1", RestoreStepKind.CopyKubeconfigsAside));
        Assert.Equal(UndoWhen.Completed, plan.Steps.Single(s => s.Kind == RestoreStepKind.CopyKubeconfigsAside).Undo!.When);
        Assert.Equal("mkdir -p /etc/kubernetes && tar -xpf /backup/kubeconfigs-20261126T221408Z.tar -C /etc/kubernetes",
            Command(plan, "cp1", RestoreStepKind.RestoreKubeconfigs));
        Assert.Contains("/backup/kubeconfigs-20261126T221408Z.tar", Command(plan, "cp1", RestoreStepKind.RemoveStagedFiles), StringComparison.Ordinal);

        // A node that had none, a set of an earlier version, or no --pki: nothing to put back.
        Assert.DoesNotContain("upload kubeconfigs", Kinds(Plan(With([]), pki: true), "cp1"));
        Assert.DoesNotContain("upload kubeconfigs", Kinds(Plan(assessment, pki: true), "cp1"));
        Assert.DoesNotContain("upload kubeconfigs", Kinds(Plan(With(["admin.conf"]), pki: false), "cp1"));
    }

    [Fact]
    public void Pki_puts_back_the_encryption_config_at_the_path_kube_apiserver_named()
    {
        var assessment = Assess(Member(1, 1, false));
        RestoreAssessment With(IReadOnlyList<string> files) => WithArtifact(assessment, ArtifactKinds.EncryptionConfig, files, "/etc/kubernetes/enc/enc.yaml");

        var plan = Plan(With(["enc.yaml"]), pki: true);

        Assert.Equal(["restore pki", "upload the encryption config", "copy the encryption config aside", "restore the encryption config", "stop static pods"],
            Kinds(plan, "cp1").Skip(4).Take(5));
        Assert.Equal(new Upload(new RestoreFile(RestoreFileKind.EncryptionConfig, "cp1"), "/backup/encryption-config-20261126T221408Z.tar"),
            plan.Steps.Single(s => s.Kind == RestoreStepKind.UploadEncryptionConfig).Action);
        Assert.Equal(
            "mkdir -p /backup/encryption-config.before-restore-20261127T010203Z && for f in enc.yaml; do if [ -e /etc/kubernetes/enc/\"$f\" ]; " +
            "then cp -a /etc/kubernetes/enc/\"$f\" /backup/encryption-config.before-restore-20261127T010203Z/ || exit 1; fi; done",
            Command(plan, "cp1", RestoreStepKind.CopyEncryptionConfigAside));
        Assert.Equal(UndoWhen.Completed, plan.Steps.Single(s => s.Kind == RestoreStepKind.CopyEncryptionConfigAside).Undo!.When);
        Assert.Equal("mkdir -p /etc/kubernetes/enc && tar -xpf /backup/encryption-config-20261126T221408Z.tar -C /etc/kubernetes/enc",
            Command(plan, "cp1", RestoreStepKind.RestoreEncryptionConfig));
        Assert.Contains("/backup/encryption-config-20261126T221408Z.tar", Command(plan, "cp1", RestoreStepKind.RemoveStagedFiles), StringComparison.Ordinal);

        // One missing on the node when it was backed up, a set without it, or no --pki: nothing to put back.
        Assert.DoesNotContain("upload the encryption config", Kinds(Plan(With([]), pki: true), "cp1"));
        Assert.DoesNotContain("upload the encryption config", Kinds(Plan(assessment, pki: true), "cp1"));
        Assert.DoesNotContain("upload the encryption config", Kinds(Plan(With(["enc.yaml"]), pki: false), "cp1"));
    }

    /// <summary>The set with one more artifact of cp1: a kubeconfigs or encryption-config archive holding <paramref name="files"/>.</summary>
    private static RestoreAssessment WithArtifact(RestoreAssessment assessment, string kind, IReadOnlyList<string> files, string? path = null) => assessment with
    {
        Set = assessment.Set with
        {
            Manifest = assessment.Set.Manifest with
            {
                Artifacts = [.. assessment.Set.Manifest.Artifacts, new ArtifactRecord
                {
                    Name = $"{kind}-cp1.tar.zst.age", Kind = kind, Node = "cp1", Files = files, Path = path,
                    PlainSize = 1, PlainSha256 = "0", StoredSize = 1, StoredSha256 = "0", Compression = "zstd",
                }],
            },
        },
    };

    [Fact]
    public void Pki_is_refused_before_anything_changes_when_the_set_lacks_a_nodes_archive()
    {
        var assessment = Assess(Member(1, 1, false));
        var withoutPki = assessment with
        {
            Set = assessment.Set with { Manifest = assessment.Set.Manifest with { Artifacts = assessment.Set.Manifest.Artifacts.Where(a => a.Kind != ArtifactKinds.Pki).ToList() } },
        };

        var plan = Plan(withoutPki, pki: true);

        Assert.Empty(plan.Steps);
        Assert.StartsWith("node cp1: the set has no PKI archive of cp1", plan.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void A_node_that_lost_etcd_yaml_gets_the_backed_up_one_staged_after_its_pods_stop()
    {
        var lost = Member(1, 1, false) with { BackedUpEtcdYaml = "apiVersion: v1\n" };

        var plan = Plan(Assess(lost));

        var kinds = Kinds(plan, "cp1");
        Assert.Equal(Array.IndexOf(kinds, "stop static pods") + 1, Array.IndexOf(kinds, "stage the backed-up etcd.yaml"));
        var staged = plan.Steps.Single(s => s.Kind == RestoreStepKind.StageBackedUpEtcdYaml);
        Assert.Equal(new Upload(new RestoreFile(RestoreFileKind.EtcdYaml, "cp1"), "/backup/etcd.yaml"), staged.Action);
        Assert.Equal(new RestoreUndo("rm -f /backup/etcd.yaml", UndoWhen.Attempted), staged.Undo);
        Assert.Contains("--name cp1", Command(plan, "cp1", RestoreStepKind.SnapshotRestore), StringComparison.Ordinal);
    }

    [Fact]
    public void A_node_whose_etcd_yaml_is_neither_on_it_nor_readable_from_the_set_is_refused_naming_why()
    {
        var lost = Member(1, 1, false) with { Flags = null, FlagsProblem = "etcd.yaml is not on the node and not in the set" };

        var plan = Plan(Assess(lost));

        Assert.Equal("node cp1: etcd.yaml is not on the node and not in the set: --name, --initial-cluster and --initial-advertise-peer-urls are unknown", plan.Refusal);
    }

    [Fact]
    public void A_sudo_node_runs_the_same_commands()
    {
        var assessment = Assess(Member(1, 1, false));
        var sudo = assessment with
        {
            Cluster = assessment.Cluster with { ControlPlanes = [assessment.Cluster.ControlPlanes[0] with { Ssh = new SshOptions { User = "ops", Sudo = true } }] },
        };

        Assert.Equal(Plan(assessment).Steps, Plan(sudo).Steps);
    }
}
