using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;
using static ClusterBackup.Tests.Restore.RestoredClusters;

namespace ClusterBackup.Tests.Restore;

/// <summary>
/// A restore that meets a fault, caused for real (a failing etcdctl, a connection cut mid-upload, a
/// staging filesystem too small or filled mid-upload, the agent killed, an etcd still starting, a damaged object): every member is left as it was, or restored.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class RestoreFaultTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public async Task A_failure_mid_restore_rolls_back_and_names_node_and_step()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rf", 3);
        var (config, _) = await BackUpAsync(cluster, "rf");
        await cluster.Members[0].CorruptAsync();
        await cluster.Members[1].CorruptAsync();
        var controlPlanes = (JsonArray)config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]!;
        controlPlanes[2]!["Restore"] = new JsonObject { ["Etcdctl"] = "/nonexistent/etcdctl" };
        foreach (var member in cluster.Members)
        {
            // Renewed since the backup: a rolled-back --pki restore must leave the renewed one.
            await File.WriteAllTextAsync(Path.Combine(member.Node.PkiDirectory, "ca.crt"), "renewed since the backup\n");
        }

        var before = cluster.Members.Select(Snapshot).ToList();
        var pkiBefore = cluster.Members.Select(m => Pki(m.Node.PkiDirectory)).ToList();

        var result = await CliRunner.RunAsync(config, "restore", "--cluster", "rf", "--pki", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.Equal(1, result.ExitCode);
        result.AssertError("error: node rf-cp3: etcdctl snapshot restore: exit status 127");
        result.AssertError("rolled back: rf-cp1, rf-cp2, rf-cp3");
        var after = cluster.Members.Select(Snapshot).ToList();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(before[i].Where(p => !p.Contains("staging", StringComparison.Ordinal)), after[i].Where(p => !p.Contains("staging", StringComparison.Ordinal)));
            Assert.Equal(pkiBefore[i], Pki(cluster.Members[i].Node.PkiDirectory));
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(cluster.Members[i].Node.PkiDirectory)!, "pki.before-restore-*"));
        }
    }

    [Fact]
    public async Task A_connection_cut_mid_upload_fails_that_member_rolls_back_every_member_and_the_next_restore_succeeds()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rc", 2);
        await FillAsync(cluster, "rc");

        var (config, inSet) = await BackUpAsync(cluster, "rc");
        var second = cluster.Members[1];
        await using var relay = new TcpRelay(second.Node.Port, bytesPerSecond: 1_000_000).Start();
        await File.AppendAllLinesAsync(_rig.KnownHosts, [$"[127.0.0.1]:{relay.Port} {second.Node.HostPublicKey}"]);
        config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]![1]!["Ssh"]!["Port"] = relay.Port;
        foreach (var member in cluster.Members)
        {
            await member.CorruptAsync();
        }

        var before = cluster.Members.Select(Snapshot).ToList();

        var restore = CliRunner.RunAsync(config, "restore", "--cluster", "rc", "--yes", "--identity", _rig.AgeIdentityFile);
        var cut = false;
        while (!restore.IsCompleted)
        {
            // Cut once part of the snapshot reached the second node, then let it be reached again (for the undo).
            if (!cut && Directory.Exists(second.StagingDirectory) &&
                Directory.GetFiles(second.StagingDirectory, "snapshot-*.db").Any(f => new FileInfo(f).Length > 256 * 1024))
            {
                relay.Cut();
                relay.Start();
                cut = true;
            }

            await Task.Delay(20);
        }

        var result = await restore;
        Assert.True(cut, $"the restore ended before the upload was cut: {result}");
        Assert.Equal(1, result.ExitCode);
        result.AssertError("error: node rc-cp2: upload snapshot:");
        result.AssertError("rolled back: rc-cp1, rc-cp2 (data dirs and manifests as they were)");
        Assert.False(result.Error.Contains("NOT undone", StringComparison.Ordinal), result.Error);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(before[i].Where(p => !p.Contains("staging", StringComparison.Ordinal)), Snapshot(cluster.Members[i]).Where(p => !p.Contains("staging", StringComparison.Ordinal)));
            Assert.Empty(Directory.GetFiles(cluster.Members[i].StagingDirectory));
        }

        var again = await CliRunner.RunAsync(config, "restore", "--cluster", "rc", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.True(again.ExitCode == 0, again.ToString());
        await AssertHoldsTheSetAsync(cluster, "rc", inSet);
    }

    [Fact]
    public async Task A_staging_filesystem_too_small_for_the_snapshot_refuses_the_restore_before_any_step_and_the_next_restore_succeeds()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rn", 1);
        await FillAsync(cluster, "rn");

        var (config, inSet) = await BackUpAsync(cluster, "rn");
        var member = cluster.Members[0];
        await member.CorruptAsync();
        var before = Snapshot(member);
        var mount = Directory.CreateTempSubdirectory("cluster-backup-tmpfs-").FullName;
        await Tools.CheckAsync("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount);
        try
        {
            var staging = Path.Combine(mount, "staging"); // not there yet: its filesystem is its parent's
            config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]![0]!["Paths"]!["Staging"] = staging;

            var dryRun = await CliRunner.RunAsync(config, "restore", "--cluster", "rn", "--dry-run", "--identity", _rig.AgeIdentityFile);
            var result = await CliRunner.RunAsync(config, "restore", "--cluster", "rn", "--yes", "--identity", _rig.AgeIdentityFile);

            foreach (var refused in new[] { dryRun, result })
            {
                Assert.Equal(1, refused.ExitCode);
                refused.AssertError($"error: cluster rn: restore refused: node rn-cp1: not enough free space: {mount} has 1.0 MiB free, and the restore needs ");
                refused.AssertError($"(the snapshot and archives staged in {staging}: ");
                refused.AssertError("free space there, or set Paths.Staging to a filesystem with room");
            }

            Assert.Equal(before, Snapshot(member));
            Assert.False(Directory.Exists(staging), "the refused restore made the staging dir");

            await Tools.CheckAsync("mount", "-o", "remount,size=64m", mount);
            var again = await CliRunner.RunAsync(config, "restore", "--cluster", "rn", "--yes", "--identity", _rig.AgeIdentityFile);

            Assert.True(again.ExitCode == 0, again.ToString());
            await AssertHoldsTheSetAsync(cluster, "rn", inSet);
            Assert.Empty(Directory.GetFiles(staging));
        }
        finally
        {
            await Tools.RunAsync("umount", ["-l", mount]);
        }
    }

    [Fact]
    public async Task A_staging_filesystem_filled_during_the_upload_fails_naming_it_rolls_back_and_the_next_restore_succeeds()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rd", 1);
        await FillAsync(cluster, "rd");

        var (config, inSet) = await BackUpAsync(cluster, "rd");
        var member = cluster.Members[0];
        await using var relay = new TcpRelay(member.Node.Port, bytesPerSecond: 1_000_000).Start(); // an upload of seconds
        await File.AppendAllLinesAsync(_rig.KnownHosts, [$"[127.0.0.1]:{relay.Port} {member.Node.HostPublicKey}"]);
        var node = config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]![0]!;
        node["Ssh"]!["Port"] = relay.Port;
        await member.CorruptAsync();
        var before = Snapshot(member);
        var mount = Directory.CreateTempSubdirectory("cluster-backup-tmpfs-").FullName;
        await Tools.CheckAsync("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mount);
        try
        {
            var staging = Path.Combine(mount, "staging");
            node["Paths"]!["Staging"] = staging;

            // The space check passes; then another writer fills the filesystem while the snapshot goes up.
            var restore = CliRunner.RunAsync(config, "restore", "--cluster", "rd", "--yes", "--identity", _rig.AgeIdentityFile);
            var filled = false;
            while (!restore.IsCompleted)
            {
                if (!filled && Directory.Exists(staging) && Directory.GetFiles(staging, "snapshot-*.db").Any(f => new FileInfo(f).Length > 256 * 1024))
                {
                    await Tools.RunAsync("dd", ["if=/dev/zero", $"of={mount}/filler", "bs=1M"]); // until ENOSPC
                    filled = true;
                }

                await Task.Delay(20);
            }

            var result = await restore;
            Assert.True(filled, $"the restore ended before the filesystem was filled: {result}");
            Assert.Equal(1, result.ExitCode);
            result.AssertError($"error: node rd-cp1: upload snapshot: cannot upload {staging}/snapshot-");
            result.AssertError($": Failure: no space left on the node's {mount} (0.0 MiB of 64.0 MiB free)");
            result.AssertError("rolled back: rd-cp1 (data dirs and manifests as they were)");
            Assert.Equal(before, Snapshot(member));
            Assert.Empty(Directory.GetFiles(staging));

            File.Delete(Path.Combine(mount, "filler"));
            var again = await CliRunner.RunAsync(config, "restore", "--cluster", "rd", "--yes", "--identity", _rig.AgeIdentityFile);

            Assert.True(again.ExitCode == 0, again.ToString());
            await AssertHoldsTheSetAsync(cluster, "rd", inSet);
        }
        finally
        {
            await Tools.RunAsync("umount", ["-l", mount]);
        }
    }

    [Fact]
    public async Task A_restore_killed_mid_way_leaves_the_member_to_the_next_restore_which_succeeds()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rk", 1);
        var (config, inSet) = await BackUpAsync(cluster, "rk");
        var member = cluster.Members[0];
        await member.CorruptAsync();
        var parent = Path.GetDirectoryName(member.DataDirectory)!;
        var restored = Path.GetFileName(member.DataDirectory) + ".restored-*";

        // etcdctl takes its time, as with a large snapshot: the agent is killed while it restores.
        var slow = WithEtcdctl(config, "sh -c 'etcdctl \"$@\" && sleep 5' etcdctl");
        await using (var agent = await CliProcess.StartAsync(slow, "restore-rk", "restore", "--cluster", "rk", "--yes", "--identity", _rig.AgeIdentityFile))
        {
            await agent.WaitUntilAsync(() => Task.FromResult(Directory.GetDirectories(parent, restored).Length > 0), "etcdctl restoring", TimeSpan.FromSeconds(60));
            await agent.StopAsync(); // SIGKILL: the manifests are in staging, etcdctl's dir beside the data dir
        }

        var result = await CliRunner.RunAsync(config, "restore", "--cluster", "rk", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.True(result.ExitCode == 0, result.ToString());
        await AssertHoldsTheSetAsync(cluster, "rk", inSet);
        Assert.Empty(Directory.GetDirectories(parent, restored));
        Assert.Empty(Directory.GetFiles(member.StagingDirectory));
    }

    [Fact]
    public async Task A_restore_interrupted_while_etcdctl_restores_finishes_that_step_undoes_every_step_says_so_and_the_next_restore_succeeds()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "ri", 1);
        var (config, inSet) = await BackUpAsync(cluster, "ri");
        var member = cluster.Members[0];
        await member.CorruptAsync();
        var before = Snapshot(member);
        var markers = Directory.CreateTempSubdirectory("cluster-backup-interrupt-").FullName;
        var (started, proceed, finished) = (Path.Combine(markers, "started"), Path.Combine(markers, "proceed"), Path.Combine(markers, "finished"));

        // etcdctl takes its time, as with a large snapshot: the restore is interrupted (Ctrl-C) while it
        // runs, and etcdctl goes on only once the agent has taken the interruption in, however slow this machine.
        var slow = WithEtcdctl(config, $"sh -c 'touch {started} && while [ ! -e {proceed} ]; do sleep 0.1; done && etcdctl \"$@\" && touch {finished}' etcdctl");
        int exit;
        string log;
        await using (var agent = await CliProcess.StartAsync(slow, "restore-ri", "restore", "--cluster", "ri", "--yes", "--identity", _rig.AgeIdentityFile))
        {
            await agent.WaitUntilAsync(() => Task.FromResult(File.Exists(started)), "etcdctl started", TimeSpan.FromSeconds(60));
            await Tools.CheckAsync("kill", "-INT", agent.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await agent.WaitUntilAsync(
                () => Task.FromResult(agent.ReadLog().Contains("interrupted: each member stops", StringComparison.Ordinal)), "the interruption taken in", TimeSpan.FromSeconds(60));
            await File.WriteAllTextAsync(proceed, string.Empty);
            exit = await agent.WaitForExitAsync(TimeSpan.FromSeconds(60));
            log = agent.ReadLog();
        }

        // The command in progress was not cut off: it ended before the undo, so nothing runs on the node any more.
        Assert.True(File.Exists(finished), "the agent exited while etcdctl was still running on the node:\n" + log);
        Assert.Equal(1, exit);
        Assert.Contains("interrupted: each member stops after the step in progress, then what was done is undone", log, StringComparison.Ordinal);
        Assert.Contains("error: restore interrupted while preparing (ri-cp1: etcdctl snapshot restore); rolled back: ri-cp1 (data dirs and manifests as they were)", log, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(member).Where(entry => entry != member.StagingDirectory)); // staging stays, empty, as after any restore
        Assert.Empty(Directory.GetFiles(member.StagingDirectory));

        var result = await CliRunner.RunAsync(config, "restore", "--cluster", "ri", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.True(result.ExitCode == 0, result.ToString());
        await AssertHoldsTheSetAsync(cluster, "ri", inSet);
    }

    [Fact]
    public async Task A_restore_waits_for_an_etcd_still_running_with_the_data_dir_before_it_moves_it_aside()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rw", 1);
        var (config, inSet) = await BackUpAsync(cluster, "rw");
        var member = cluster.Members[0];
        await member.CorruptAsync();

        // The etcd that a kubelet started just before the manifest moved: it never listens, and for
        // eight seconds makes the data dir again whenever it is gone, as a starting etcd would.
        using var starting = System.Diagnostics.Process.Start("bash",
            ["-c", "for i in $(seq 80); do mkdir -p \"$1/member\"; sleep 0.1; done", $"--data-dir={member.DataDirectory}", member.DataDirectory]);
        try
        {
            var result = await CliRunner.RunAsync(config, "restore", "--cluster", "rw", "--yes", "--identity", _rig.AgeIdentityFile);

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.True(starting.HasExited, "the restore went on while a process ran with the data dir");
            await AssertHoldsTheSetAsync(cluster, "rw", inSet);
        }
        finally
        {
            if (!starting.HasExited)
            {
                starting.Kill();
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_damaged_snapshot_object_fails_its_streamed_uploads_which_are_undone_and_every_member_is_left_as_it_was(int size)
    {
        var name = $"rd{size}";
        await using var cluster = await EtcdCluster.StartAsync(_rig, name, size);
        var (config, inSet) = await BackUpAsync(cluster, name);
        var listed = await CliRunner.RunAsync(config, "list", "--json");
        var setId = JsonSerializer.Deserialize<JsonElement>(listed.Output)[0].GetProperty("setId").GetString()!;
        var key = $"s3://{LocalRig.Bucket}/backups/{name}/{setId}/etcd.db.zst.age";
        var work = Directory.CreateTempSubdirectory("cluster-backup-damage-").FullName;
        var (good, bad) = (Path.Combine(work, "good"), Path.Combine(work, "bad"));
        Assert.Equal(0, (await _rig.Moto.AwsAsync("s3", "cp", key, good)).ExitCode);
        var bytes = await File.ReadAllBytesAsync(good);
        bytes[bytes.Length * 3 / 4] ^= 0x10; // well into the stream: part of it has reached the nodes
        await File.WriteAllBytesAsync(bad, bytes);
        Assert.Equal(0, (await _rig.Moto.AwsAsync("s3", "cp", bad, key)).ExitCode);
        foreach (var member in cluster.Members)
        {
            await member.CorruptAsync();
        }

        var before = cluster.Members.Select(Snapshot).ToList();

        var result = await CliRunner.RunAsync(config, "restore", "--cluster", name, "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.Equal(1, result.ExitCode);
        result.AssertError($"error: node {name}-cp");
        result.AssertError(": upload snapshot:");
        result.AssertError($"set {setId} of cluster {name}: artifact etcd.db.zst.age:");
        result.AssertError("the stored object is damaged or was replaced; use another set");
        result.AssertError($"rolled back: {string.Join(", ", cluster.Members.Select(m => m.Name))} (");
        for (var i = 0; i < size; i++)
        {
            var member = cluster.Members[i];
            Assert.Equal(before[i].Where(p => !p.Contains("staging", StringComparison.Ordinal)), Snapshot(member).Where(p => !p.Contains("staging", StringComparison.Ordinal)));
            Assert.Empty(Directory.GetFiles(member.StagingDirectory));
        }

        // The object mended, the same restore goes through.
        Assert.Equal(0, (await _rig.Moto.AwsAsync("s3", "cp", good, key)).ExitCode);
        var again = await CliRunner.RunAsync(config, "restore", "--cluster", name, "--yes", "--identity", _rig.AgeIdentityFile);
        Assert.True(again.ExitCode == 0, again.ToString());
        await AssertHoldsTheSetAsync(cluster, name, inSet);
        Directory.Delete(work, recursive: true);
    }

    /// <summary>The configuration with the first member's <c>Restore:Etcdctl</c> set: how the restore runs etcdctl on the node.</summary>
    private static JsonObject WithEtcdctl(JsonObject config, string etcdctl)
    {
        var changed = (JsonObject)config.DeepClone();
        changed["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]![0]!["Restore"] = new JsonObject { ["Etcdctl"] = etcdctl };
        return changed;
    }
}
