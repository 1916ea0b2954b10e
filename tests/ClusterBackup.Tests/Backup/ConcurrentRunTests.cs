using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Backup;

/// <summary>
/// Runs of one cluster that start at the same moment (two processes, the daemon and the CLI) each
/// commit a set of their own, or fail touching nothing of the other's: never one set from two runs.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class ConcurrentRunTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    public static TheoryData<string> Stores => new() { "moto", "s3rver", "filesystem" };

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Two_backup_processes_started_together_commit_two_distinct_sets_that_verify(string storage)
    {
        var cluster = $"race-processes-{storage}";
        var config = Config(storage, cluster);

        var first = await CliProcess.StartAsync(config, $"{cluster}-1", "backup");
        var second = await CliProcess.StartAsync(config, $"{cluster}-2", "backup");
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
    public async Task Four_runs_in_the_same_second_each_commit_their_own_set(string storage)
    {
        // In one process, the four reservations meet within milliseconds of each other.
        var cluster = $"race-same-second-{storage}";
        var config = Config(storage, cluster);

        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => CliRunner.RunAsync(config, "backup")));

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.ToString()));
        var ids = results.Select(r => r.Output.Split("committed set ")[1][..16]).ToList();
        Assert.Equal(4, ids.Distinct().Count());
        await AssertDistinctVerifiedSetsAsync(config, cluster, expected: 4);
    }

    [Fact]
    public async Task A_manual_backup_while_the_daemon_backs_up_the_same_cluster_commits_its_own_set()
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

        Assert.All(manual, r => Assert.True(r.ExitCode == 0, r.ToString()));
        Assert.Equal(0, failures);
        var sets = await AssertDistinctVerifiedSetsAsync(config, cluster, expected: null);
        Assert.True(sets >= 4, $"{sets} sets");
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
