using System.Text.Json;
using ClusterBackup.Rig;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Etcd;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Sources.Etcd;

/// <summary>Exec mode saves the snapshot on the node only where that leaves the node a tenth of its filesystem free.</summary>
[Collection(RigCollection.Name)]
public sealed class SnapshotRoomTests(RigFixture fixture)
{
    private const long MiB = 1024 * 1024;

    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public void The_snapshot_may_take_all_but_a_tenth_of_the_filesystem()
    {
        var space = new FreeSpace("/", 1000 * MiB, 200 * MiB);

        Assert.Null(SnapshotRoom.Problem(space, 100 * MiB, "/var/tmp"));
        Assert.Equal(
            "not enough free space to save the snapshot in /var/tmp: / has 199.0 MiB free of 1000.0 MiB, and the snapshot (etcd's database, 100.0 MiB) " +
            "would leave 99.0 MiB, under the 10% of it that the kubelet keeps free (nodefs.available); nothing was written on the node. " +
            "Free space there, or set Etcd.Mode to tunnel, which writes nothing on the node",
            SnapshotRoom.Problem(space with { AvailableBytes = 199 * MiB }, 100 * MiB, "/var/tmp"));
        Assert.Contains("and the snapshot (etcd's database, 250.0 MiB) does not fit;", SnapshotRoom.Problem(space, 250 * MiB, "/var/tmp"), StringComparison.Ordinal);
    }

    [Fact]
    public void The_node_compresses_the_snapshot_beside_it_only_with_room_for_the_database_twice()
    {
        var space = new FreeSpace("/", 1000 * MiB, 300 * MiB);

        Assert.True(SnapshotRoom.HasRoomForCompressedCopy(space, 100 * MiB)); // 100 MiB left
        Assert.False(SnapshotRoom.HasRoomForCompressedCopy(space, 101 * MiB)); // 98 MiB left
        Assert.Null(SnapshotRoom.Problem(space, 101 * MiB, "/var/tmp")); // saved all the same
    }

    [Fact]
    public async Task A_node_whose_temp_dir_cannot_hold_the_snapshot_fails_the_run_before_etcdctl_writes_anything_and_the_next_run_succeeds()
    {
        const string cluster = "exec-room";
        await _rig.Etcd.PutBulkAsync(); // a database of several MiB
        await using var node = await _rig.StartNodeWithVarTmpAsync("cp-small-tmp", "4m");
        var config = _rig.Config("moto", cluster, "exec", node);

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(1, result.ExitCode);
        result.AssertError($"error: cluster {cluster}: node cp-small-tmp: etcd snapshot: not enough free space to save the snapshot in /var/tmp: " +
                           "/var/tmp has 4.0 MiB free of 4.0 MiB, and the snapshot (etcd's database, ");
        result.AssertError(") does not fit; nothing was written on the node. Free space there, or set Etcd.Mode to tunnel");
        Assert.Empty(Directory.EnumerateFileSystemEntries(node.VarTmp));
        Assert.Empty(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));

        await node.ResizeVarTmpAsync("512m");
        var next = await CliRunner.RunAsync(config, "backup");

        Assert.True(next.ExitCode == 0, next.ToString());
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        Assert.Single(JsonSerializer.Deserialize<JsonElement>(list.Output).EnumerateArray());
        Assert.Empty(Directory.EnumerateFileSystemEntries(node.VarTmp));
    }
}
