using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Scheduling;

/// <summary>The daemon as systemd runs it: the real binary, real schedules, metrics scraped over HTTP, SIGTERM.</summary>
[Collection(RigCollection.Name)]
public sealed class DaemonTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    private JsonObject Config(string cluster, string schedule, string mode = "tunnel", JsonObject? retention = null)
    {
        var config = _rig.Config("moto", cluster, mode, _rig.Node1);
        var entry = config["ClusterBackup"]!["Clusters"]![0]!;
        entry["Schedule"] = schedule;
        if (retention is not null)
        {
            entry["Retention"] = retention;
        }

        return config;
    }

    private static string Series(string name, string cluster, string? extra = null) =>
        $"{name}{{cluster=\"{cluster}\"{(extra is null ? string.Empty : "," + extra)}}}";

    [Fact]
    public async Task On_a_seconds_schedule_it_backs_up_repeatedly_moves_metrics_and_applies_retention()
    {
        const string cluster = "daemon-every-3s";
        await using var daemon = await DaemonProcess.StartAsync(Config(cluster, "*/3 * * * * ?", retention: new JsonObject { ["KeepLast"] = 2 }));

        // A new set counts until the prune right after it: wait for three runs and the count back at KeepLast.
        await daemon.WaitUntilAsync(async () => await daemon.ValueAsync(Series("cluster_backup_runs_total", cluster, "result=\"success\"")) >= 3
            && await daemon.ValueAsync(Series("cluster_backup_sets", cluster)) == 2, "three successful runs and two sets kept", TimeSpan.FromSeconds(90));

        var metrics = await daemon.ScrapeAsync();
        Assert.Equal(200, await daemon.HealthAsync());
        Assert.True(await daemon.ValueAsync(Series("cluster_backup_pruned_sets_total", cluster)) >= 1, metrics);
        Assert.InRange(await daemon.ValueAsync(Series("cluster_backup_last_success_timestamp_seconds", cluster)) ?? 0,
            DateTimeOffset.UtcNow.AddMinutes(-2).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        Assert.True(await daemon.ValueAsync(Series("cluster_backup_etcd_revision", cluster)) > 0, metrics);
        Assert.True(await daemon.ValueAsync(Series("cluster_backup_last_size_bytes", cluster, "artifact=\"etcd-snapshot\"")) > 0, metrics);
        Assert.Equal(3, await daemon.ValueAsync(Series("cluster_backup_schedule_interval_seconds", cluster)));
        Assert.Equal(0, await daemon.ValueAsync(Series("cluster_backup_consecutive_failures", cluster)));
        Assert.Contains(Series("cluster_backup_runs_total", cluster, "result=\"failure\"") + " 0", metrics, StringComparison.Ordinal);
        Assert.Contains(Series("cluster_backup_last_verify_success_timestamp_seconds", cluster) + " 0", metrics, StringComparison.Ordinal);
        Assert.Contains("cluster_backup_duration_seconds_count{cluster=\"" + cluster + "\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("cluster_backup_build_info{version=", metrics, StringComparison.Ordinal);
        Assert.Contains("\"Cluster\":\"" + cluster + "\"", daemon.Log, StringComparison.Ordinal); // structured JSON logs off a terminal

        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(70)));
    }

    [Fact]
    public async Task After_a_restart_freshness_comes_from_the_newest_stored_set_before_any_new_backup()
    {
        const string cluster = "daemon-restart";
        var config = Config(cluster, "0 0 1 1 *"); // yearly: nothing is due right after a backup
        config["ClusterBackup"]!["Clusters"]![0]!["VerifySchedule"] = "0 3 * * *";
        var backup = await CliRunner.RunAsync(config, "backup");
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        var manifest = JsonSerializer.Deserialize<JsonElement>(list.Output)[0];

        await using var daemon = await DaemonProcess.StartAsync(config);
        await daemon.WaitUntilAsync(async () => await daemon.HealthAsync() == 200, "healthy", TimeSpan.FromSeconds(30));

        Assert.Equal(manifest.GetProperty("startedAt").GetDateTimeOffset().ToUnixTimeSeconds(), await daemon.ValueAsync(Series("cluster_backup_last_success_timestamp_seconds", cluster)));
        Assert.Equal(manifest.GetProperty("etcd").GetProperty("revision").GetInt64(), await daemon.ValueAsync(Series("cluster_backup_etcd_revision", cluster)));
        Assert.Equal(1, await daemon.ValueAsync(Series("cluster_backup_sets", cluster)));
        Assert.Equal(0, await daemon.ValueAsync(Series("cluster_backup_runs_total", cluster, "result=\"success\"")));
        Assert.Equal(0, Events(daemon.Log, "LogCatchUp", cluster));

        // Verification runs once at start-up, so its gauge is not 0 after a restart either.
        await daemon.WaitUntilAsync(async () => await daemon.ValueAsync(Series("cluster_backup_last_verify_success_timestamp_seconds", cluster)) > 0, "a verification", TimeSpan.FromSeconds(30));
        Assert.Equal(86400, await daemon.ValueAsync(Series("cluster_backup_verify_interval_seconds", cluster)));
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(70)));
    }

    [Fact]
    public async Task A_trigger_that_finds_its_cluster_busy_is_skipped_not_queued()
    {
        const string cluster = "daemon-slow";
        var slow = await ScriptAsync("""
            #!/bin/sh
            # etcdctl whose snapshot takes 8 seconds
            case " $* " in *" snapshot save "*) sleep 8 ;; esac
            exec /usr/bin/etcdctl "$@"
            """);
        var config = Config(cluster, "*/2 * * * * ?", "exec");
        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Etcdctl"] = slow;
        await using var daemon = await DaemonProcess.StartAsync(config);

        await daemon.WaitUntilAsync(
            () => Task.FromResult(Events(daemon.Log, "LogSkipped", cluster) >= 2),
            "two skipped triggers", TimeSpan.FromSeconds(60));

        Assert.Equal(1, Events(daemon.Log, "LogStarting", cluster));
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(70)));
    }

    [Fact]
    public async Task SIGTERM_mid_upload_exits_0_commits_nothing_and_leaves_no_upload_open()
    {
        const string cluster = "daemon-sigterm";
        for (var i = 0; i < 7; i++)
        {
            var value = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-bulk-").FullName, "value");
            await File.WriteAllTextAsync(value, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(900_000)));
            await _rig.Etcd.PutFileAsync($"/registry/bulk-sigterm/{i}", value);
        }

        // Storage that hangs once a request carries more than 1 MiB: the first part's upload stays in flight.
        await using var proxy = new StallingProxy(_rig.Moto.Port, stallAfterBytes: 1024 * 1024);
        var config = Config(cluster, "0 0 1 1 *"); // no set yet: the start-up catch-up runs at once
        config["ClusterBackup"]!["Storage"]!["ServiceUrl"] = proxy.Endpoint;
        await using var daemon = await DaemonProcess.StartAsync(config);

        await daemon.WaitUntilAsync(
            () => Task.FromResult(proxy.Stalled > 0 && _rig.Moto.FullLog().Contains($"POST /cluster-backups/backups/{cluster}/", StringComparison.Ordinal)),
            "a multipart upload in flight", TimeSpan.FromSeconds(60));
        var exit = await daemon.TerminateAsync(TimeSpan.FromSeconds(70));

        Assert.True(exit == 0, daemon.Log);
        Assert.True(Events(daemon.Log, "LogCancelled", cluster) == 1, daemon.Log);
        Assert.Empty(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
        Assert.Empty(await _rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
    }

    [Fact]
    public async Task Log_levels_come_from_the_Serilog_section_and_a_level_it_does_not_know_stops_start_up_with_78()
    {
        const string cluster = "daemon-levels";
        var config = Config(cluster, "0 0 1 1 *");
        config["Serilog"] = new JsonObject
        {
            ["MinimumLevel"] = new JsonObject
            {
                ["Default"] = "Warning",
                ["Override"] = new JsonObject { ["ClusterBackup.Metrics.MetricsListener"] = "information" },
            },
        };
        await using (var daemon = await DaemonProcess.StartAsync(config))
        {
            await daemon.WaitUntilAsync(async () => await daemon.HealthAsync() == 200, "healthy", TimeSpan.FromSeconds(30));
            Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(70)));
            Assert.Contains("\"Name\":\"LogListening\"", daemon.Log, StringComparison.Ordinal); // its override
            Assert.Equal(0, Events(daemon.Log, "LogSeeded", cluster)); // Information, below the default
        }

        config["Serilog"]!["MinimumLevel"]!["Override"]!["Quartz"] = "Loud";
        await using var refused = await DaemonProcess.StartAsync(config);
        Assert.Equal(78, await refused.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("Serilog:MinimumLevel:Override:Quartz: 'Loud' is not a level", refused.Log, StringComparison.Ordinal);
    }

    /// <summary>How many log events of this name (compact JSON, one a line) name the cluster.</summary>
    private static int Events(string log, string eventName, string cluster) =>
        log.Split('\n').Count(line => line.Contains($"\"Name\":\"{eventName}\"", StringComparison.Ordinal)
                                       && line.Contains($"\"Cluster\":\"{cluster}\"", StringComparison.Ordinal));

    private static async Task<string> ScriptAsync(string content)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-script-").FullName, "etcdctl");
        await File.WriteAllTextAsync(path, content.ReplaceLineEndings("\n") + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }
}
