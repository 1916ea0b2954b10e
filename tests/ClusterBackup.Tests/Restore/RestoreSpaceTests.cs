using ClusterBackup.Configuration;
using ClusterBackup.Restore;
using ClusterBackup.Sources;

namespace ClusterBackup.Tests.Restore;

/// <summary>Whether a member's filesystems hold what its restore writes: df's lines read, and the peak of each filesystem.</summary>
public sealed class RestoreSpaceTests
{
    private const long MiB = 1024 * 1024;

    private static readonly ControlPlaneSettings Node = new("cp1", "10.0.0.1", new SshOptions(), new EtcdOptions(), new PathOptions(), new RestoreOptions());

    private static readonly ControlPlaneSettings SudoNode = Node with { Ssh = new SshOptions { User = "ops", Sudo = true } };

    /// <summary>Each measured path on the filesystem mounted where <paramref name="mounts"/> says, with that much free.</summary>
    private static Dictionary<string, FreeSpace> Space(ControlPlaneSettings node, params (string Path, string Mount, long Free)[] mounts) =>
        RestoreSpace.PathsToMeasure(node).ToDictionary(p => p, p =>
        {
            var (_, mount, free) = mounts.FirstOrDefault(m => m.Path == p, mounts.Single(m => m.Path == "*"));
            return new FreeSpace(mount, 1L << 40, free);
        });

    private static MemberAssessment Member(IReadOnlyDictionary<string, FreeSpace> space, long leftovers = 0, bool mountPoint = false) =>
        new("cp1", true, false, "connection refused") { Space = space, LeftoverBytes = leftovers, DataDirIsMountPoint = mountPoint };

    [Fact]
    public void The_paths_measured_are_the_staging_dir_the_data_dir_and_its_parent_the_pkis_parent_and_with_sudo_the_upload_dir()
    {
        Assert.Equal(["/backup", "/var/lib", "/var/lib/etcd", "/etc/kubernetes"], RestoreSpace.PathsToMeasure(Node));
        Assert.Equal(["/backup", "/var/lib", "/var/lib/etcd", "/etc/kubernetes", "/var/tmp"], RestoreSpace.PathsToMeasure(SudoNode));
        Assert.Equal(["/srv/staging", "/", "/etcd", "/etc/kubernetes"],
            RestoreSpace.PathsToMeasure(Node with { Paths = new PathOptions { Staging = "/srv/staging/", EtcdData = "/etcd" } }));
    }

    [Fact]
    public void One_filesystem_must_hold_the_staged_snapshot_and_the_restored_data_dir_with_its_wal_segment_at_once()
    {
        // 60 staged + 60 restored + 64 of WAL = 184 MiB.
        Assert.Null(RestoreSpace.Shortfall(Node, Member(Space(Node, ("*", "/", 184 * MiB))), 60 * MiB, 0, 0));

        var shortfall = RestoreSpace.Shortfall(Node, Member(Space(Node, ("*", "/", 184 * MiB - 1))), 60 * MiB, 0, 0);

        Assert.Equal(
            "node cp1: not enough free space: / has 184.0 MiB free, and the restore needs 184.0 MiB there " +
            "(the snapshot and archives staged in /backup: 60.0 MiB, the restored data dir beside /var/lib/etcd: 124.0 MiB); " +
            "free space there, or set Paths.Staging to a filesystem with room",
            shortfall);
    }

    [Fact]
    public void Each_filesystem_is_weighed_on_its_own_and_only_those_short_are_named()
    {
        var space = Space(Node, ("/backup", "/backup", 61 * MiB), ("/var/lib", "/var", 100 * MiB), ("*", "/", 1 * MiB));

        var shortfall = RestoreSpace.Shortfall(Node, Member(space), 60 * MiB, 0, 0);

        Assert.Equal(
            "node cp1: not enough free space: /var has 100.0 MiB free, and the restore needs 124.0 MiB there " +
            "(the restored data dir beside /var/lib/etcd: 124.0 MiB); free space there",
            shortfall);
        Assert.Null(RestoreSpace.Shortfall(Node, Member(Space(Node, ("/backup", "/backup", 60 * MiB), ("*", "/", 124 * MiB))), 60 * MiB, 0, 0));
    }

    [Fact]
    public void With_pki_the_archives_are_staged_the_pki_is_copied_aside_and_the_kubeconfigs_replaced_are_kept_in_staging()
    {
        // Staged: 10 + 1 (PKI archive) + 2 × 2 (kubeconfigs archive, and the files copied aside); later: 10 + 64 restored, 1 PKI aside.
        const long snapshot = 10 * MiB, pki = 1 * MiB, kubeconfigs = 2 * MiB;
        Assert.Null(RestoreSpace.Shortfall(Node, Member(Space(Node, ("*", "/", 90 * MiB))), snapshot, pki, kubeconfigs));

        var shortfall = RestoreSpace.Shortfall(Node, Member(Space(Node, ("*", "/", 90 * MiB - 1))), snapshot, pki, kubeconfigs);

        Assert.Contains("the restore needs 90.0 MiB there (the snapshot and archives staged in /backup: 15.0 MiB, " +
                        "the restored data dir beside /var/lib/etcd: 74.0 MiB, the PKI copied aside beside /etc/kubernetes/pki: 1.0 MiB)", shortfall, StringComparison.Ordinal);
    }

    [Fact]
    public void With_sudo_an_upload_passes_through_the_upload_dir_which_needs_room_only_on_another_filesystem()
    {
        var apart = Space(SudoNode, ("/backup", "/backup", 100 * MiB), ("/var/tmp", "/var/tmp", 59 * MiB), ("*", "/", 200 * MiB));

        Assert.Equal(
            "node cp1: not enough free space: /var/tmp has 59.0 MiB free, and the restore needs 60.0 MiB there (each upload on its way, in /var/tmp: 60.0 MiB); free space there",
            RestoreSpace.Shortfall(SudoNode, Member(apart), 60 * MiB, 0, 0));

        // On the staging dir's filesystem the upload is moved, not copied: its bytes are the staged ones,
        // and it is gone before the restored data dir is written.
        Assert.Null(RestoreSpace.Shortfall(SudoNode, Member(Space(SudoNode, ("*", "/", 184 * MiB))), 60 * MiB, 0, 0));
        Assert.Null(RestoreSpace.Shortfall(SudoNode, Member(Space(SudoNode, ("/backup", "/backup", 60 * MiB), ("*", "/", 124 * MiB))), 60 * MiB, 0, 0));
    }

    [Fact]
    public void What_killed_restores_left_beside_the_data_dir_is_removed_before_the_restored_one_is_written_but_not_before_the_uploads()
    {
        // 60 staged + 124 restored − 90 left by a killed restore = 94 MiB at the peak.
        Assert.Null(RestoreSpace.Shortfall(Node, Member(Space(Node, ("*", "/", 100 * MiB)), leftovers: 90 * MiB), 60 * MiB, 0, 0));
        Assert.NotNull(RestoreSpace.Shortfall(Node, Member(Space(Node, ("*", "/", 100 * MiB)), leftovers: 80 * MiB), 60 * MiB, 0, 0));

        var shortfall = RestoreSpace.Shortfall(Node, Member(Space(Node, ("*", "/", 50 * MiB)), leftovers: 1000 * MiB), 60 * MiB, 0, 0);

        Assert.Equal(
            "node cp1: not enough free space: / has 50.0 MiB free, and the restore needs 60.0 MiB there " +
            "(the snapshot and archives staged in /backup: 60.0 MiB, the restored data dir beside /var/lib/etcd: 124.0 MiB, " +
            "less what killed restores left as /var/lib/etcd.restored-*, removed first: 1000.0 MiB); " +
            "free space there, or set Paths.Staging to a filesystem with room",
            shortfall);
    }

    [Fact]
    public void A_data_dir_that_is_a_mount_point_holds_the_restored_data_dir_itself()
    {
        var space = Space(Node, ("/var/lib/etcd", "/var/lib/etcd", 100 * MiB), ("*", "/", 1L << 40));

        Assert.Null(RestoreSpace.Shortfall(Node, Member(space), 60 * MiB, 0, 0));

        Assert.Equal(
            "node cp1: not enough free space: /var/lib/etcd has 100.0 MiB free, and the restore needs 124.0 MiB there " +
            "(the restored data dir in /var/lib/etcd: 124.0 MiB); free space there",
            RestoreSpace.Shortfall(Node, Member(space, mountPoint: true), 60 * MiB, 0, 0));
        Assert.Null(RestoreSpace.Shortfall(Node, Member(space, leftovers: 24 * MiB, mountPoint: true), 60 * MiB, 0, 0));
        Assert.Equal("/var/lib/etcd/.restored-", RestoreSpace.RestoredPrefix(Node, insideDataDir: true));
        Assert.Equal("/var/lib/etcd.restored-", RestoreSpace.RestoredPrefix(Node, insideDataDir: false));
    }

    [Fact]
    public void A_node_that_could_not_say_is_not_refused()
    {
        Assert.Null(RestoreSpace.Shortfall(Node, Member(new Dictionary<string, FreeSpace>()), 60 * MiB, 0, 0));
        Assert.Null(RestoreSpace.Shortfall(SudoNode, Member(Space(Node, ("*", "/", 0))), 60 * MiB, 0, 0));
    }
}
