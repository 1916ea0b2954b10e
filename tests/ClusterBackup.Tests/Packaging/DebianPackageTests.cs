using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Scheduling;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Packaging;

/// <summary>
/// packaging/build-deb, as an operator meets it: the .deb installs on this machine with no .NET,
/// its binary runs, the packaged configuration says what to fill in, the installed unit verifies
/// (its man page included), the shipped binary (ReadyToRun, trimmed: not the build the other tests
/// run in-process) backs up, lists, verifies, reports, runs the daemon on a shared PostgreSQL
/// store, prunes, downloads and restores a member, and it removes cleanly. Needs root, as CI runs.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class DebianPackageTests(RigFixture fixture, SharedSchedulerFixture shared) : IClassFixture<SharedSchedulerFixture>, IDisposable
{
    private const string Installed = "/usr/bin/cluster-backup";
    private readonly LocalRig _rig = fixture.Rig;
    private readonly string _out = Directory.CreateTempSubdirectory("cluster-backup-deb-").FullName;

    [Fact]
    public async Task The_package_builds_installs_checks_and_removes()
    {
        Assert.False(Directory.Exists("/etc/cluster-backup") || File.Exists("/usr/bin/cluster-backup"),
            "cluster-backup is installed on this machine: this test installs and purges the package, so it refuses to run here");

        var build = await Tools.RunAsync(Path.Combine(Tools.RepositoryRoot(), "packaging", "build-deb"), [_out], timeout: TimeSpan.FromMinutes(10));
        Assert.True(build.ExitCode == 0, build.ToString());
        var deb = build.Output.Trim().Split('\n')[^1];
        Assert.True(File.Exists(deb), build.ToString());
        var contents = await Tools.CheckAsync("dpkg-deb", "--contents", deb);
        foreach (var path in new[]
                 {
                     "./usr/bin/cluster-backup", "./lib/systemd/system/cluster-backup.service", "./etc/cluster-backup/appsettings.json",
                     "./usr/share/cluster-backup/prometheus/cluster-backup.rules.yml", "./usr/share/cluster-backup/grafana/cluster-backup.json",
                     "./usr/share/man/man1/cluster-backup.1.gz",
                 })
        {
            Assert.Contains(path, contents, StringComparison.Ordinal);
        }

        Assert.Equal("/etc/cluster-backup/appsettings.json", (await Tools.CheckAsync("dpkg-deb", "--info", deb, "conffiles")).Trim());

        try
        {
            var install = await Tools.RunAsync("dpkg", ["-i", deb]);
            Assert.True(install.ExitCode == 0, install.ToString());

            Assert.Equal("0.1.0", (await Tools.CheckAsync(Installed, "--version")).Trim());
            var check = await Tools.RunAsync(Installed, ["config", "check"]);
            Assert.Equal(78, check.ExitCode);
            Assert.Contains("ClusterBackup:Encryption:Recipients:0: 'age1-REPLACE", check.Error, StringComparison.Ordinal);
            Assert.DoesNotContain("PrivateKeyFile", check.Error, StringComparison.Ordinal); // made at installation
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode("/etc/cluster-backup/id_ed25519"));
            Assert.DoesNotContain("Signing", check.Error, StringComparison.Ordinal); // made at installation
            Assert.Equal("cluster-backup 0600", (await Tools.CheckAsync("stat", "-c", "%U %04a", "/etc/cluster-backup/signing_ed25519")).Trim());
            var trusted = await File.ReadAllTextAsync("/etc/cluster-backup/allowed_signers");
            Assert.StartsWith("cluster-backup namespaces=\"cluster-backup\" ssh-ed25519 ", trusted, StringComparison.Ordinal);
            Assert.Contains((await File.ReadAllTextAsync("/etc/cluster-backup/signing_ed25519.pub")).Split(' ')[1], trusted, StringComparison.Ordinal);

            var verify = await Tools.RunAsync("systemd-analyze", ["verify", "/lib/systemd/system/cluster-backup.service"]);
            Assert.True(verify.ExitCode == 0 && verify.Error.Trim().Length == 0, verify.ToString());

            await TheShippedBinaryWorksEndToEndAsync();
        }
        finally
        {
            var purge = await Tools.RunAsync("dpkg", ["--purge", "cluster-backup"]);
            Assert.True(purge.ExitCode == 0, purge.ToString());
            Assert.False(File.Exists("/usr/bin/cluster-backup"));
            Assert.True(File.Exists("/etc/cluster-backup/id_ed25519"), "purge must keep the operator's SSH key");
            await Tools.RunAsync("userdel", ["cluster-backup"]);
            Directory.Delete("/etc/cluster-backup", recursive: true);
            if (Directory.Exists("/var/lib/cluster-backup"))
            {
                Directory.Delete("/var/lib/cluster-backup", recursive: true);
            }
        }
    }

    /// <summary>The paths where trimming or ahead-of-time code could break what a plain build does: configuration binding, SSH, gRPC, S3, JSON, Quartz and Npgsql.</summary>
    private async Task TheShippedBinaryWorksEndToEndAsync()
    {
        var tunnel = _rig.Config("moto", "packaged", "tunnel", _rig.Node1);
        var exec = _rig.Config("s3rver", "packaged-exec", "exec", _rig.Node1);
        foreach (var config in new[] { tunnel, exec })
        {
            var backup = await InstalledAsync(config, "backup");
            Assert.True(backup.ExitCode == 0, backup.ToString());
            Assert.Contains("committed set ", backup.Output, StringComparison.Ordinal);
        }

        var list = await InstalledAsync(tunnel, "list", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Equal("packaged", JsonSerializer.Deserialize<JsonElement>(list.Output)[0].GetProperty("cluster").GetString());
        var verify = await InstalledAsync(exec, "verify", "--deep", "--identity", _rig.AgeIdentityFile);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        var certs = await InstalledAsync(tunnel, "certs");
        Assert.Equal(1, certs.ExitCode); // the rig's scheduler.conf expires in 10 days
        Assert.Matches(@"packaged\s+scheduler\.conf\s+cp1\s+.*EXPIRING", certs.Output);

        // The daemon on a shared PostgreSQL store: a cluster with no set is backed up at start-up.
        var (_, connection) = await shared.NewDatabaseAsync();
        var daemonConfig = _rig.Config("moto", "packaged-daemon", "tunnel", _rig.Node1);
        daemonConfig["ClusterBackup"]!["Clusters"]![0]!["Schedule"] = "0 0 0 1 1 ? 2099";
        daemonConfig["ClusterBackup"]!["Scheduler"] = new JsonObject { ["Store"] = "postgres", ["ConnectionString"] = connection, ["InstanceName"] = "packaged" };
        await using var daemon = await DaemonProcess.StartAsync(daemonConfig, "cluster-backup-packaged", Installed);
        await daemon.WaitUntilAsync(
            async () => await daemon.ValueAsync("cluster_backup_runs_total{cluster=\"packaged-daemon\",result=\"success\"}") == 1,
            "the catch-up backup", TimeSpan.FromSeconds(90));
        Assert.Equal(1, await daemon.ValueAsync("cluster_backup_scheduler_instances"));
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));

        await TheShippedBinaryBringsAClusterBackAsync();
    }

    /// <summary>The bad night, with the shipped binary: download a set, prune, and restore a member whose etcd data is corrupted.</summary>
    private async Task TheShippedBinaryBringsAClusterBackAsync()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "packaged-restore", 1);
        var inSet = Enumerable.Range(0, 10).ToDictionary(i => $"/registry/packaged-restore/{i}", i => $"value {i}");
        foreach (var (key, value) in inSet)
        {
            Assert.Equal(0, (await cluster.EtcdctlAsync(["put", key, value])).ExitCode);
        }

        var config = cluster.Config("packaged-restore");
        var retention = (JsonObject)config["ClusterBackup"]!["Clusters"]![0]!;
        retention["Retention"] = new JsonObject { ["KeepLast"] = 10 };
        for (var i = 0; i < 2; i++)
        {
            var backup = await InstalledAsync(config, "backup");
            Assert.True(backup.ExitCode == 0, backup.ToString());
        }

        retention["Retention"] = new JsonObject { ["KeepLast"] = 1 };
        var prune = await InstalledAsync(config, "prune");
        Assert.True(prune.ExitCode == 0, prune.ToString());
        Assert.Contains("removed 1 set", prune.Output, StringComparison.Ordinal);
        Assert.Equal(1, JsonSerializer.Deserialize<JsonElement>((await InstalledAsync(config, "list", "--json")).Output).GetArrayLength());

        var target = Path.Combine(_out, "downloaded");
        var download = await InstalledAsync(config, "download", "--cluster", "packaged-restore", "--to", target, "--identity", _rig.AgeIdentityFile);
        Assert.True(download.ExitCode == 0, download.ToString());
        var status = await Tools.RunAsync("etcdctl", ["snapshot", "status", Path.Combine(target, "etcd-snapshot.db"), "-w", "json"], new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });
        Assert.True(status.ExitCode == 0, status.ToString());

        Assert.Equal(0, (await cluster.EtcdctlAsync(["put", "/registry/packaged-restore/after-the-backup", "x"])).ExitCode);
        await cluster.Members[0].CorruptAsync();
        var restore = await InstalledAsync(config, "restore", "--cluster", "packaged-restore", "--pki", "--yes", "--identity", _rig.AgeIdentityFile);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Contains("cluster packaged-restore restored", restore.Output, StringComparison.Ordinal);
        await Restore.RestoredClusters.AssertHoldsTheSetAsync(cluster, "packaged-restore", inSet);
    }

    private static async Task<ToolResult> InstalledAsync(JsonObject config, params string[] args) =>
        await Tools.RunAsync(Installed, [.. args, "--config", await CliRunner.WriteConfigAsync(config)], new Dictionary<string, string>(S3Server.Credentials));

    public void Dispose() => Directory.Delete(_out, recursive: true);
}
