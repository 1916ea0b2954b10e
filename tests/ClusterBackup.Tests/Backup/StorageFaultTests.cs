using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Backup;

/// <summary>
/// Storage that is down, cut mid-upload or full: the run fails naming storage (not the node),
/// nothing half-written is listed, the other clusters are still attempted, and the next run succeeds.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class StorageFaultTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public async Task With_S3_unreachable_every_cluster_is_attempted_and_named()
    {
        var config = _rig.Config("moto", "outage-a", "tunnel", _rig.Node1);
        var second = config["ClusterBackup"]!["Clusters"]![0]!.DeepClone().AsObject();
        second["Name"] = "outage-b";
        ((JsonArray)config["ClusterBackup"]!["Clusters"]!).Add(second);
        config["ClusterBackup"]!["Storage"]!["ServiceUrl"] = $"http://127.0.0.1:{Tools.FreePort()}"; // nothing listens

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(1, result.ExitCode);
        result.AssertError("error: cluster outage-a: reserve set id: cannot list s3://cluster-backups/backups/outage-a/");
        result.AssertError("error: cluster outage-b: reserve set id: cannot list s3://cluster-backups/backups/outage-b/");
        result.AssertError("is unreachable");
        Assert.DoesNotContain("unexpected", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task S3_cut_mid_upload_fails_the_run_as_storage_and_the_next_run_succeeds()
    {
        const string cluster = "s3-cut";
        await _rig.Etcd.PutBulkAsync();
        await using var relay = _rig.SlowMotoRelay();
        var config = _rig.ConfigThrough(relay, cluster);

        var backup = CliRunner.RunAsync(config, "backup");
        while (!backup.IsCompleted && relay.Forwarded < 1_500_000)
        {
            await Task.Delay(20);
        }

        relay.Cut();
        var result = await backup;

        Assert.Equal(1, result.ExitCode);
        result.AssertError($"error: cluster {cluster}: storage: cannot upload s3://cluster-backups/backups/{cluster}/");
        Assert.DoesNotContain("etcd snapshot failed", result.Error, StringComparison.Ordinal);

        // With S3 gone the clean-up could not run either: what is left is an incomplete set (its
        // reservation marker at most), never listed, and removed by prune once past the grace period.
        Assert.All(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"), key => Assert.Contains("/.reservation-", key, StringComparison.Ordinal));

        relay.Start();
        Assert.Equal("no complete backup sets", (await CliRunner.RunAsync(config, "list", "--cluster", cluster)).Output.Trim());
        var next = await CliRunner.RunAsync(config, "backup");
        Assert.True(next.ExitCode == 0, next.ToString());
        var verify = await CliRunner.RunAsync(config, "verify", "--cluster", cluster, "--set", "all");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        verify.AssertOutput("verified 1 sets: 1 good, 0 bad");
    }

    [Fact]
    public async Task A_full_disk_fails_the_run_as_storage_leaves_nothing_and_the_next_run_succeeds()
    {
        const string cluster = "disk-full";
        await _rig.Etcd.PutBulkAsync();
        var mount = Directory.CreateTempSubdirectory("cluster-backup-tmpfs-").FullName;
        await Tools.CheckAsync("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mount);
        try
        {
            var config = _rig.Config(mount, cluster, "tunnel", _rig.Node1);

            var result = await CliRunner.RunAsync(config, "backup");

            Assert.Equal(1, result.ExitCode);
            result.AssertError($"error: cluster {cluster}: storage: cannot write {mount}/backups/{cluster}/");
            result.AssertError("No space left on device");
            Assert.DoesNotContain("etcd snapshot", result.Error, StringComparison.Ordinal);
            Assert.Empty(Directory.EnumerateFiles(mount, "*", SearchOption.AllDirectories));

            await Tools.CheckAsync("mount", "-o", "remount,size=64m", mount);
            var next = await CliRunner.RunAsync(config, "backup");
            Assert.True(next.ExitCode == 0, next.ToString());
            var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
            Assert.Single(JsonSerializer.Deserialize<JsonElement>(list.Output).EnumerateArray());
            foreach (var directory in new[] { $"{mount}/backups", $"{mount}/backups/{cluster}" })
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
            }
        }
        finally
        {
            await Tools.RunAsync("umount", ["-l", mount]);
        }
    }

    [Fact]
    public async Task SIGTERM_to_a_backup_is_a_cancellation_not_a_failure()
    {
        const string cluster = "sigterm";
        await _rig.Etcd.PutBulkAsync();
        await using var relay = _rig.SlowMotoRelay();
        var config = _rig.ConfigThrough(relay, cluster);
        await using var backup = await CliProcess.StartAsync(config, cluster, "backup");
        await backup.WaitUntilAsync(() => Task.FromResult(relay.Forwarded > 1_000_000), "an upload under way", TimeSpan.FromSeconds(60));

        var code = await backup.TerminateAsync(TimeSpan.FromSeconds(60));

        var log = backup.ReadLog();
        Assert.True(code != 0, log);
        Assert.Contains("cancelled", log, StringComparison.Ordinal);
        Assert.DoesNotContain("[ERR]", log, StringComparison.Ordinal);
        Assert.DoesNotContain("etcd snapshot failed", log, StringComparison.Ordinal);
        Assert.Empty(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
        Assert.Empty(await _rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
    }
}
