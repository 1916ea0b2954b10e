using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Backup;

/// <summary>
/// Runs of one cluster that start at the same moment never make one set from two runs. On one host
/// (two processes, the daemon and the CLI) the cluster's run lock refuses the second; runs it does
/// not cover (two workstations each with its own scheduler, writing to one store) each commit a set
/// of their own, or fail touching nothing of the other's.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class ConcurrentRunTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    public static TheoryData<string> Stores => new() { "moto", "s3rver", "filesystem" };

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Two_backup_processes_of_two_hosts_started_together_commit_two_distinct_sets_that_verify(string storage)
    {
        var cluster = $"race-processes-{storage}";
        var config = Config(storage, cluster);

        var first = await CliProcess.StartAsync(config, $"{cluster}-1", CliProcess.OtherHost(), "backup");
        var second = await CliProcess.StartAsync(config, $"{cluster}-2", CliProcess.OtherHost(), "backup");
        await using (first)
        await using (second)
        {
            var codes = new[] { await first.WaitForExitAsync(TimeSpan.FromMinutes(2)), await second.WaitForExitAsync(TimeSpan.FromMinutes(2)) };
            Assert.True(codes.All(c => c == 0), $"{first.Tail()}\n{second.Tail()}");
        }

        await AssertDistinctVerifiedSetsAsync(config, cluster, expected: 2);
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Four_runs_of_four_hosts_in_the_same_second_each_commit_their_own_set(string storage)
    {
        var cluster = $"race-same-second-{storage}";
        var config = Config(storage, cluster);

        var runs = new List<ExternalProcess>();
        for (var i = 0; i < 4; i++)
        {
            runs.Add(await CliProcess.StartAsync(config, $"{cluster}-{i}", CliProcess.OtherHost(), "backup"));
        }

        foreach (var run in runs)
        {
            await using (run)
            {
                Assert.True(await run.WaitForExitAsync(TimeSpan.FromMinutes(2)) == 0, run.Tail());
            }
        }

        await AssertDistinctVerifiedSetsAsync(config, cluster, expected: 4);
    }

    [Fact]
    public async Task Two_backup_processes_of_one_host_started_together_commit_one_set_and_the_other_is_refused()
    {
        const string cluster = "race-one-host";
        var config = Config("moto", cluster);

        var first = await CliProcess.StartAsync(config, $"{cluster}-1", "backup");
        var second = await CliProcess.StartAsync(config, $"{cluster}-2", "backup");
        await using (first)
        await using (second)
        {
            var codes = new[] { await first.WaitForExitAsync(TimeSpan.FromMinutes(2)), await second.WaitForExitAsync(TimeSpan.FromMinutes(2)) };
            var logs = first.ReadLog() + second.ReadLog();
            Assert.True(codes.Order().SequenceEqual([0, 1]) || codes.All(c => c == 0), logs); // the second may start after the first ended
            if (codes.Contains(1))
            {
                Assert.Contains($"error: cluster {cluster}: another backup of it is in progress, by another process on this host", logs, StringComparison.Ordinal);
            }
        }

        await AssertDistinctVerifiedSetsAsync(config, cluster, expected: null);
    }

    [Fact]
    public async Task A_manual_backup_while_the_daemon_backs_up_the_same_cluster_is_refused_or_commits_its_own_set()
    {
        const string cluster = "race-daemon-cli";
        var config = Config("moto", cluster);
        config["ClusterBackup"]!["Clusters"]![0]!["Schedule"] = "* * * * * ?"; // every second
        await using var daemon = await DaemonProcess.StartAsync(config.DeepClone().AsObject());
        await daemon.WaitUntilAsync(async () => await daemon.ValueAsync($"cluster_backup_runs_total{{cluster=\"{cluster}\",result=\"success\"}}") >= 1,
            "a scheduled backup", TimeSpan.FromSeconds(60));

        var manual = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => CliRunner.RunAsync(config, "backup")));
        var failures = await daemon.ValueAsync($"cluster_backup_consecutive_failures{{cluster=\"{cluster}\"}}");
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));

        // The daemon's run holds the cluster most of each second: a manual run is refused (and writes
        // nothing) or runs between two scheduled ones; it never fails otherwise, nor mixes sets.
        Assert.All(manual, r => Assert.True(
            r.ExitCode == 0 || (r.ExitCode == 1 && r.Error.Contains("another backup of it is in progress", StringComparison.Ordinal)), r.ToString()));
        Assert.Equal(0, failures);
        var sets = await AssertDistinctVerifiedSetsAsync(config, cluster, expected: null);
        Assert.True(sets >= 1 + manual.Count(r => r.ExitCode == 0), $"{sets} sets");
        Assert.DoesNotContain("\"Level\":\"Error\"", daemon.Log, StringComparison.Ordinal);
    }

    private JsonObject Config(string storage, string cluster)
    {
        var target = storage == "filesystem" ? Directory.CreateTempSubdirectory("cluster-backup-race-").FullName : storage;
        var config = _rig.Config(target, cluster, "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Encryption"]!["IdentityFile"] = _rig.AgeIdentityFile;
        return config;
    }

    /// <summary>Every set is complete, has its own id, and verifies with the identity (etcd's trailer included).</summary>
    private static async Task<int> AssertDistinctVerifiedSetsAsync(JsonObject config, string cluster, int? expected)
    {
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.DoesNotContain("DAMAGED", list.Error, StringComparison.Ordinal);
        var ids = JsonSerializer.Deserialize<JsonElement>(list.Output).EnumerateArray().Select(s => s.GetProperty("setId").GetString()).ToList();
        if (expected is { } count)
        {
            Assert.Equal(count, ids.Count);
        }

        Assert.Equal(ids.Count, ids.Distinct().Count());
        var verify = await CliRunner.RunAsync(config, "verify", "--cluster", cluster, "--set", "all");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        verify.AssertOutput($"verified {ids.Count} sets: {ids.Count} good, 0 bad");
        return ids.Count;
    }
}
