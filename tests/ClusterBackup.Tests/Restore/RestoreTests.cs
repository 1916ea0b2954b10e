using System.Text.Json;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;
using static ClusterBackup.Tests.Restore.RestoredClusters;

namespace ClusterBackup.Tests.Restore;

/// <summary>
/// The restore runbook against real etcd members behind real sshd nodes, each run by a stand-in
/// kubelet while its static-pod manifest is in place.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class RestoreTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

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
        await AssertHoldsTheSetAsync(cluster, "rs", inSet);
        Assert.Single(Directory.GetDirectories(Path.GetDirectoryName(cluster.Members[0].DataDirectory)!, "etcd-data.before-restore-*"));
    }

    [Fact]
    public async Task A_member_whose_etcd_volume_was_replaced_by_an_empty_one_is_restored_into_that_volume()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rv", 1);
        var (config, inSet) = await BackUpAsync(cluster, "rv");
        var member = cluster.Members[0];
        await member.CorruptAsync();

        // The data dir is a volume of its own, replaced by an empty one: a mount point, which cannot be
        // renamed. The kubelet's next start of etcd makes a new, empty member on it.
        await Tools.CheckAsync("mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "tmpfs", member.DataDirectory);
        try
        {
            var dry = await CliRunner.RunAsync(config, "restore", "--cluster", "rv", "--dry-run", "--identity", _rig.AgeIdentityFile);
            Assert.True(dry.ExitCode == 0, dry.ToString());
            dry.AssertOutput($"[rv-cp1] move the data dir aside: if [ -e {member.DataDirectory}/member ]; then mv {member.DataDirectory}/member {member.DataDirectory}/member.before-restore-");

            var result = await CliRunner.RunAsync(config, "restore", "--cluster", "rv", "--yes", "--identity", _rig.AgeIdentityFile);

            Assert.True(result.ExitCode == 0, result.ToString());
            await AssertHoldsTheSetAsync(cluster, "rv", inSet);
            Assert.Equal(0, (await Tools.RunAsync("mountpoint", ["-q", member.DataDirectory])).ExitCode);
            Assert.True(Directory.Exists(Path.Combine(member.DataDirectory, "member", "snap")));
            Assert.Empty(Directory.GetDirectories(member.DataDirectory, ".restored-*"));
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(member.DataDirectory)!, "*.restored-*"));
        }
        finally
        {
            await Tools.RunAsync("umount", ["-l", member.DataDirectory]);
        }
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
        await AssertHoldsTheSetAsync(cluster, "rl", inSet);
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
        await AssertHoldsTheSetAsync(cluster, "ru", inSet);
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
    public async Task A_restore_of_the_PKI_warns_when_the_sets_PKI_did_not_hold_together()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "rpm", 1);
        var pki = cluster.Members[0].Node.PkiDirectory;
        var otherKey = Path.Combine(cluster.Members[0].Node.Root, "other-sa.key");
        await Tools.CheckAsync("openssl", "genrsa", "-out", otherKey, "2048");
        await Tools.CheckAsync("openssl", "rsa", "-in", otherKey, "-pubout", "-out", Path.Combine(pki, "sa.pub")); // sa.key signs tokens sa.pub does not verify
        var (config, _) = await BackUpAsync(cluster, "rpm");
        await cluster.Members[0].CorruptAsync();

        var dry = await CliRunner.RunAsync(config, "restore", "--cluster", "rpm", "--pki", "--dry-run", "--identity", _rig.AgeIdentityFile);
        var withoutPki = await CliRunner.RunAsync(config, "restore", "--cluster", "rpm", "--dry-run", "--identity", _rig.AgeIdentityFile);

        Assert.True(dry.ExitCode == 0, dry.ToString());
        dry.AssertError("the PKI of rpm-cp1 did not hold together when it was backed up: sa.key does not match sa.pub; --pki puts it back as it was");
        Assert.True(withoutPki.ExitCode == 0, withoutPki.ToString());
        Assert.DoesNotContain("did not hold together", withoutPki.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_node_rebuilt_without_its_encryption_config_gets_it_back_with_the_pki()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "renc", 1);
        var node = cluster.Members[0].Node;
        var directory = Path.Combine(node.Root, "enc");
        var encryptionConfig = Path.Combine(directory, "enc.yaml");
        Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(encryptionConfig, "kind: EncryptionConfiguration\n# aescbc key1\n");
        File.SetUnixFileMode(encryptionConfig, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var apiServer = Path.Combine(node.ManifestsDirectory, "kube-apiserver.yaml");
        await File.AppendAllTextAsync(apiServer, $"spec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --encryption-provider-config={encryptionConfig}\n");
        var (config, inSet) = await BackUpAsync(cluster, "renc");
        await cluster.Members[0].CorruptAsync();
        Directory.Delete(directory, recursive: true); // the node was rebuilt: /etc/kubernetes/enc is gone

        var dry = await CliRunner.RunAsync(config, "restore", "--cluster", "renc", "--pki", "--dry-run", "--identity", _rig.AgeIdentityFile);
        var result = await CliRunner.RunAsync(config, "restore", "--cluster", "renc", "--pki", "--yes", "--identity", _rig.AgeIdentityFile);

        Assert.True(dry.ExitCode == 0, dry.ToString());
        dry.AssertOutput("[renc-cp1] restore the encryption config:");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("kind: EncryptionConfiguration\n# aescbc key1\n", await File.ReadAllTextAsync(encryptionConfig));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(encryptionConfig));
        Assert.Equal(inSet.OrderBy(k => k.Key), (await ReadAsync(cluster, "renc")).OrderBy(k => k.Key));
    }
}
