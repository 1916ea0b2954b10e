using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Restore;

/// <summary>
/// The restore runbook against real etcd members behind real sshd nodes, each run by a stand-in
/// kubelet while its static-pod manifest is in place.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class RestoreTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    /// <summary>Puts keys, backs up, then writes more keys the set must not have.</summary>
    private async Task<(JsonObject Config, Dictionary<string, string> InSet)> BackUpAsync(EtcdCluster cluster, string name)
    {
        var inSet = Enumerable.Range(0, 10).ToDictionary(i => $"/registry/{name}/{i}", i => $"value {i}");
        foreach (var (key, value) in inSet)
        {
            Assert.Equal(0, (await cluster.EtcdctlAsync(["put", key, value])).ExitCode);
        }

        var config = cluster.Config(name);
        var backup = await CliRunner.RunAsync(config, "backup");
        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.Equal(0, (await cluster.EtcdctlAsync(["put", $"/registry/{name}/after-the-backup", "x"])).ExitCode);
        return (config, inSet);
    }

    private static async Task<Dictionary<string, string>> ReadAsync(EtcdCluster cluster, string name)
    {
        var result = await cluster.EtcdctlAsync(["get", $"/registry/{name}/", "--prefix", "-w", "json"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        var json = JsonSerializer.Deserialize<JsonElement>(result.Output);
        return !json.TryGetProperty("kvs", out var kvs)
            ? []
            : kvs.EnumerateArray().ToDictionary(
                kv => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(kv.GetProperty("key").GetString()!)),
                kv => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(kv.GetProperty("value").GetString()!)));
    }

    private static string[] Snapshot(EtcdCluster.Member member) =>
        Directory.GetFileSystemEntries(Path.GetDirectoryName(member.DataDirectory)!, "*", SearchOption.TopDirectoryOnly)
            .Concat(Directory.GetFiles(member.Node.ManifestsDirectory))
            .Order(StringComparer.Ordinal).ToArray();

    /// <summary>Every file of a PKI dir with its mode and content.</summary>
    private static string[] Pki(string directory) =>
        Directory.GetFiles(directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => $"{f} {File.GetUnixFileMode(f)} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f)))}")
            .ToArray();

    [Fact]
    public async Task A_single_member_with_a_corrupted_data_dir_is_restored_to_the_set()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rs", 1);
        var (config, inSet) = await BackUpAsync(cluster, "rs");
        await cluster.Members[0].CorruptAsync();
        var caKey = Path.Combine(cluster.Members[0].Node.PkiDirectory, "ca.key");
        File.Delete(caKey);
        // The kubeconfigs too: one rewritten with a wider mode, one lost.
        var kubeconfigs = cluster.Members[0].Node.KubeconfigDirectory;
        var admin = Path.Combine(kubeconfigs, "admin.conf");
        var scheduler = Path.Combine(kubeconfigs, "scheduler.conf");
        var (adminBytes, schedulerBytes) = (await File.ReadAllBytesAsync(admin), await File.ReadAllBytesAsync(scheduler));
        await File.WriteAllTextAsync(admin, "not a kubeconfig\n");
        File.SetUnixFileMode(admin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.Delete(scheduler);
        var before = Snapshot(cluster.Members[0]);

        var dry = await CliRunner.RunAsync(config, "restore", "--cluster", "rs", "--pki", "--dry-run", "--identity", _rig.AgeIdentityFile);
        Assert.True(dry.ExitCode == 0, dry.ToString());
        dry.AssertOutput("[rs-cp1] upload kubeconfigs: upload over SFTP to");
        dry.AssertOutput("[rs-cp1] copy the kubeconfigs aside:");
        dry.AssertOutput("[rs-cp1] restore kubeconfigs:");
        dry.AssertOutput("for f in admin.conf controller-manager.conf kubelet.conf scheduler.conf super-admin.conf");

        var unconfirmed = await CliRunner.RunAsync(config, "restore", "--cluster", "rs", "--identity", _rig.AgeIdentityFile);
        Assert.Equal(1, unconfirmed.ExitCode);
        unconfirmed.AssertError("refusing to restore without --yes: standard input is not a terminal");
        Assert.Equal(before, Snapshot(cluster.Members[0]));

        var result = await CliRunner.RunAsync(config, "restore", "--cluster", "rs", "--pki", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(caKey));
        Assert.Equal(adminBytes, await File.ReadAllBytesAsync(admin));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(admin));
        Assert.Equal(schedulerBytes, await File.ReadAllBytesAsync(scheduler));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(scheduler));
        var aside = Assert.Single(Directory.GetDirectories(cluster.Members[0].StagingDirectory, "kubeconfigs.before-restore-*"));
        Assert.Equal("not a kubeconfig\n", await File.ReadAllTextAsync(Path.Combine(aside, "admin.conf")));
        Assert.Empty(Directory.GetFiles(cluster.Members[0].StagingDirectory));
        result.AssertOutput("plan: not HA: restoring the only member, rs-cp1");
        result.AssertOutput("cluster rs restored");
        await cluster.WaitHealthyAsync();
        Assert.Equal(inSet.OrderBy(k => k.Key), (await ReadAsync(cluster, "rs")).OrderBy(k => k.Key));
        Assert.Single(Directory.GetDirectories(Path.GetDirectoryName(cluster.Members[0].DataDirectory)!, "etcd-data.before-restore-*"));
    }

    [Fact]
    public async Task A_node_that_lost_its_etcd_yaml_is_restored_with_the_sets_copy_and_the_dry_run_asks_for_the_identity_to_read_it()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rl", 1);
        var (config, inSet) = await BackUpAsync(cluster, "rl");
        var manifest = Path.Combine(cluster.Members[0].Node.ManifestsDirectory, "etcd.yaml");
        var original = await File.ReadAllTextAsync(manifest);
        await cluster.Members[0].CorruptAsync();
        File.Delete(manifest);

        var blind = await CliRunner.RunAsync(config, "restore", "--cluster", "rl", "--dry-run");
        var dry = await CliRunner.RunAsync(config, "restore", "--cluster", "rl", "--dry-run", "--identity", _rig.AgeIdentityFile);

        Assert.Equal(1, blind.ExitCode);
        blind.AssertError("error: cluster rl: restore refused: node rl-cp1: etcd.yaml is not on the node, and the set's copy cannot be read");
        blind.AssertError("pass --identity FILE");
        Assert.True(dry.ExitCode == 0, dry.ToString());
        dry.AssertOutput("[rl-cp1] stage the backed-up etcd.yaml: upload over SFTP to");
        Assert.False(File.Exists(manifest));

        var result = await CliRunner.RunAsync(config, "restore", "--cluster", "rl", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(original, await File.ReadAllTextAsync(manifest));
        await cluster.WaitHealthyAsync();
        Assert.Equal(inSet.OrderBy(k => k.Key), (await ReadAsync(cluster, "rl")).OrderBy(k => k.Key));
    }

    [Fact]
    public async Task A_non_root_ssh_user_with_sudo_restores_the_member_and_its_pki_owned_by_root()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "ru", 1);
        var (config, inSet) = await BackUpAsync(cluster, "ru");
        var ssh = config["ClusterBackup"]!["Defaults"]!["Ssh"]!;
        ssh["User"] = LocalRig.SudoUser;
        ssh["Sudo"] = true;
        await cluster.Members[0].CorruptAsync();
        var caKey = Path.Combine(cluster.Members[0].Node.PkiDirectory, "ca.key");
        File.Delete(caKey);
        var temp = LocalRig.NodeTempDirectories();

        var result = await CliRunner.RunAsync(config, "restore", "--cluster", "ru", "--pki", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.True(result.ExitCode == 0, result.ToString());
        await cluster.WaitHealthyAsync();
        Assert.Equal(inSet.OrderBy(k => k.Key), (await ReadAsync(cluster, "ru")).OrderBy(k => k.Key));
        Assert.Equal("0 0600", (await Tools.CheckAsync("stat", "-c", "%u %04a", caKey)).Trim());
        Assert.Empty(Directory.GetFiles(cluster.Members[0].StagingDirectory));
        Assert.Empty(LocalRig.NodeTempDirectories().Except(temp));
    }

    [Fact]
    public async Task Three_members_with_quorum_lost_are_all_restored_from_one_set_after_a_dry_run_that_changes_nothing()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rq", 3);
        var (config, inSet) = await BackUpAsync(cluster, "rq");
        await cluster.Members[1].CorruptAsync();
        await cluster.Members[2].CorruptAsync();
        var before = cluster.Members.Select(Snapshot).ToList();

        var dry = await CliRunner.RunAsync(config, "restore", "--cluster", "rq", "--dry-run");

        Assert.True(dry.ExitCode == 0, dry.ToString());
        dry.AssertOutput("plan: quorum is lost");
        dry.AssertOutput("[rq-cp3] etcdctl snapshot restore: ETCDCTL_API=3 etcdctl snapshot restore");
        dry.AssertOutput("--initial-cluster rq-cp1=https://127.0.0.1:");
        Assert.Equal(before, cluster.Members.Select(Snapshot).ToList());

        var result = await CliRunner.RunAsync(config, "restore", "--cluster", "rq", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.True(result.ExitCode == 0, result.ToString());
        await cluster.WaitHealthyAsync();
        var members = await cluster.EtcdctlAsync(["member", "list", "-w", "json"]);
        Assert.Equal(3, JsonSerializer.Deserialize<JsonElement>(members.Output).GetProperty("members").GetArrayLength());
        Assert.Equal(inSet.OrderBy(k => k.Key), (await ReadAsync(cluster, "rq")).OrderBy(k => k.Key));
    }

    [Fact]
    public async Task With_quorum_the_restore_is_refused_with_the_reason()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rh", 3);
        var (config, _) = await BackUpAsync(cluster, "rh");
        await cluster.Members[2].CorruptAsync();

        var result = await CliRunner.RunAsync(config, "restore", "--cluster", "rh", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.Equal(1, result.ExitCode);
        result.AssertError("error: cluster rh: restore refused: quorum holds (2 of 3 members healthy)");
        result.AssertError("replace the failed members instead");
    }

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
        var filler = new string('x', 32 * 1024);
        for (var i = 0; i < 64; i++)
        {
            Assert.Equal(0, (await cluster.EtcdctlAsync(["put", $"/registry/rc-filler/{i}", filler])).ExitCode); // a snapshot of 2 MB or more
        }

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
        Assert.DoesNotContain("NOT undone", result.Error, StringComparison.Ordinal);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(before[i].Where(p => !p.Contains("staging", StringComparison.Ordinal)), Snapshot(cluster.Members[i]).Where(p => !p.Contains("staging", StringComparison.Ordinal)));
            Assert.Empty(Directory.GetFiles(cluster.Members[i].StagingDirectory));
        }

        var again = await CliRunner.RunAsync(config, "restore", "--cluster", "rc", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.True(again.ExitCode == 0, again.ToString());
        await cluster.WaitHealthyAsync();
        Assert.Equal(inSet.OrderBy(k => k.Key), (await ReadAsync(cluster, "rc")).OrderBy(k => k.Key));
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
            await cluster.WaitHealthyAsync();
            Assert.Equal(inSet.OrderBy(k => k.Key), (await ReadAsync(cluster, "rw")).OrderBy(k => k.Key));
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
        await cluster.WaitHealthyAsync();
        Assert.Equal(inSet.OrderBy(k => k.Key), (await ReadAsync(cluster, name)).OrderBy(k => k.Key));
        Directory.Delete(work, recursive: true);
    }
}
