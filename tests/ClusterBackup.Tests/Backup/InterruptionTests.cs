using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Backup;

/// <summary>
/// A run interrupted mid-stream, by a dropped SSH connection or a SIGKILL of the agent: nothing is
/// listed, nothing of ours stays on the node, and the next normal run succeeds.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class InterruptionTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    [Theory]
    [InlineData("tunnel")]
    [InlineData("exec")]
    public async Task SSH_dropped_mid_snapshot_fails_naming_the_node_and_the_next_run_succeeds(string mode)
    {
        var cluster = $"ssh-cut-{mode}";
        await _rig.Etcd.PutBulkAsync();
        var before = LocalRig.NodeTempDirectories();
        await using var relay = new TcpRelay(_rig.Node1.Port, bytesPerSecond: 2_000_000).Start();
        var config = await ConfigThroughAsync(relay, cluster, mode);

        var backup = CliRunner.RunAsync(config, "backup");
        while (!backup.IsCompleted && relay.Returned < 1_500_000)
        {
            await Task.Delay(10);
        }

        relay.Cut();
        var result = await backup;

        Assert.Equal(1, result.ExitCode);
        result.AssertError($"error: cluster {cluster}: node cp1: ");
        Assert.DoesNotContain(": storage:", result.Error, StringComparison.Ordinal);
        Assert.Empty(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
        Assert.Empty(await _rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
        Assert.Empty(await LocalRig.NodeTempDirectoriesLeftAsync(before)); // the exec guard noticed the dead connection

        relay.Start();
        await AssertNextRunSucceedsAsync(config, cluster);
        Assert.Empty(await LocalRig.NodeTempDirectoriesLeftAsync(before)); // the exec guard noticed the dead connection
    }

    /// <summary>
    /// The node stops answering mid-snapshot without closing the connection (a hung host, a network
    /// that drops packets), so the agent's SSH reader waits on a socket that says nothing; SIGTERM
    /// still ends the run within seconds, as a cancellation that commits nothing.
    /// </summary>
    [Theory]
    [InlineData("tunnel")]
    [InlineData("exec")]
    public async Task SIGTERM_ends_a_backup_whose_node_stopped_answering_and_commits_nothing(string mode)
    {
        var cluster = $"ssh-stall-{mode}";
        await _rig.Etcd.PutBulkAsync();
        var before = LocalRig.NodeTempDirectories();
        await using var relay = new TcpRelay(_rig.Node1.Port, bytesPerSecond: 2_000_000).Start();
        var config = await ConfigThroughAsync(relay, cluster, mode);
        await using (var backup = await CliProcess.StartAsync(config, cluster, "backup"))
        {
            await backup.WaitUntilAsync(() => Task.FromResult(relay.Returned > 1_500_000), "the snapshot under way", TimeSpan.FromSeconds(60));
            relay.Stall();
            await Task.Delay(TimeSpan.FromSeconds(1));

            var code = await backup.TerminateAsync(TimeSpan.FromSeconds(60));

            var log = backup.ReadLog();
            Assert.True(code != 0, log);
            Assert.True(log.Contains("cancelled", StringComparison.Ordinal) && !log.Contains("[ERR]", StringComparison.Ordinal), log);
            if (mode == "exec")
            {
                // The plaintext snapshot stays on the node until its guard sees the connection gone: said, not hidden.
                Assert.Contains("cp1 did not confirm within 10s that it removed the snapshot dir /var/tmp/cluster-backup.", log, StringComparison.Ordinal);
            }
        }

        Assert.Empty(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
        Assert.Empty(await _rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));

        relay.Cut(); // the network comes back: the node's guard sees the connection gone
        relay.Start();
        await AssertNextRunSucceedsAsync(config, cluster);
        Assert.Empty(await LocalRig.NodeTempDirectoriesLeftAsync(before));
    }

    [Fact]
    public async Task An_agent_killed_mid_upload_leaves_an_incomplete_set_that_is_never_listed_and_the_next_run_succeeds()
    {
        const string cluster = "killed-mid-upload";
        await _rig.Etcd.PutBulkAsync();
        await using var relay = _rig.SlowMotoRelay();
        var config = _rig.ConfigThrough(relay, cluster);

        await using (var agent = await CliProcess.StartAsync(config, cluster, "backup"))
        {
            await agent.WaitUntilAsync(() => Task.FromResult(relay.Forwarded > 2_000_000), "an upload under way", TimeSpan.FromSeconds(60));
            await agent.StopAsync(); // SIGKILL
        }

        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster);
        Assert.Equal("no complete backup sets", list.Output.Trim());
        var prune = await CliRunner.RunAsync(config, "prune", "--cluster", cluster, "--dry-run");
        prune.AssertOutput("(incomplete)");
        prune.AssertOutput("may be a run in progress");

        await AssertNextRunSucceedsAsync(config, cluster);
    }

    private async Task<JsonObject> ConfigThroughAsync(TcpRelay relay, string cluster, string mode)
    {
        var config = _rig.Config("moto", cluster, mode, _rig.Node1);
        var node = config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]![0]!;
        node["Ssh"]!["Port"] = relay.Port;
        var knownHosts = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-test-").FullName, "known_hosts");
        await File.WriteAllTextAsync(knownHosts, $"[127.0.0.1]:{relay.Port} {_rig.Node1.HostPublicKey}\n");
        config["ClusterBackup"]!["Defaults"]!["Ssh"]!["KnownHostsFile"] = knownHosts;
        config["ClusterBackup"]!["Encryption"]!["IdentityFile"] = _rig.AgeIdentityFile;
        return config;
    }

    private static async Task AssertNextRunSucceedsAsync(JsonObject config, string cluster)
    {
        var next = await CliRunner.RunAsync(config, "backup");
        Assert.True(next.ExitCode == 0, next.ToString());
        var verify = await CliRunner.RunAsync(config, "verify", "--cluster", cluster, "--set", "all");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        verify.AssertOutput("verified 1 sets: 1 good, 0 bad");
    }
}
