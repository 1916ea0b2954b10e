using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Scheduling;

/// <summary>
/// Faults under the daemon: every failed run is counted, so the alerts can fire, and a recovery
/// shows; a fault that stops the agent exits non-zero, so systemd restarts it.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class DaemonFaultTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public async Task With_S3_down_consecutive_failures_rise_with_each_run_and_reset_when_it_returns()
    {
        const string cluster = "daemon-s3-down";
        await using var relay = new TcpRelay(_rig.Moto.Port); // not started: nothing answers
        var config = _rig.Config("moto", cluster, "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Storage"]!["ServiceUrl"] = relay.Endpoint;
        config["ClusterBackup"]!["Clusters"]![0]!["Schedule"] = "*/2 * * * * ?";
        await using var daemon = await DaemonProcess.StartAsync(config);
        var consecutive = $"cluster_backup_consecutive_failures{{cluster=\"{cluster}\"}}";
        var failures = $"cluster_backup_runs_total{{cluster=\"{cluster}\",result=\"failure\"}}";
        var successes = $"cluster_backup_runs_total{{cluster=\"{cluster}\",result=\"success\"}}";

        await daemon.WaitUntilAsync(async () => await daemon.ValueAsync(consecutive) >= 3, "three failed runs in a row", TimeSpan.FromSeconds(60));
        Assert.True(await daemon.ValueAsync(failures) >= 3);
        Assert.Equal(0, await daemon.ValueAsync(successes));
        Assert.Contains("reserve set id", daemon.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("unhandled", daemon.Log, StringComparison.OrdinalIgnoreCase);

        relay.Start();
        await daemon.WaitUntilAsync(async () => await daemon.ValueAsync(successes) >= 1, "a run after S3 returned", TimeSpan.FromSeconds(60));
        Assert.Equal(0, await daemon.ValueAsync(consecutive));
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task A_metrics_port_in_use_stops_the_agent_with_exit_1_naming_the_setting_and_a_start_once_it_is_free_runs()
    {
        const string cluster = "daemon-port-taken";
        var config = _rig.Config("moto", cluster, "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Clusters"]![0]!["Schedule"] = "0 0 1 1 *";
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        await using (var stopped = await DaemonProcess.StartAsync(config, metricsPort: port))
        {
            // A clean exit here would tell systemd (Restart=on-failure) to leave the agent down.
            Assert.Equal(1, await stopped.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.True(stopped.Log.Contains($"error: the agent stopped: cannot listen on Metrics:Listen 127.0.0.1:{port}: ", StringComparison.Ordinal), stopped.Log);
        }

        taken.Stop();
        await using var daemon = await DaemonProcess.StartAsync(config, metricsPort: port);
        await daemon.WaitUntilAsync(async () => await daemon.HealthAsync() == 200, "healthy once the port is free", TimeSpan.FromSeconds(60));
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));
        Assert.DoesNotContain("the agent stopped", daemon.Log, StringComparison.Ordinal);
    }

    /// <summary>A cluster due at once (it has no set) and then not before next year, its storage behind <paramref name="relay"/>.</summary>
    private JsonObject RetryConfig(string cluster, TcpRelay relay, int attempts, int delaySeconds)
    {
        var config = _rig.Config("moto", cluster, "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Storage"]!["ServiceUrl"] = relay.Endpoint;
        var entry = config["ClusterBackup"]!["Clusters"]![0]!;
        entry["Schedule"] = "0 0 1 1 *";
        entry["Retry"] = new JsonObject { ["Attempts"] = attempts, ["DelaySeconds"] = delaySeconds };
        return config;
    }

    [Fact]
    public async Task A_failed_backup_is_tried_again_after_its_delay_and_the_retry_commits_the_set_once_storage_is_back()
    {
        const string cluster = "daemon-retry";
        await using var relay = new TcpRelay(_rig.Moto.Port); // not started: storage is down
        var config = RetryConfig(cluster, relay, attempts: 3, delaySeconds: 3);
        await using var daemon = await DaemonProcess.StartAsync(config);
        var failures = $"cluster_backup_runs_total{{cluster=\"{cluster}\",result=\"failure\"}}";
        var successes = $"cluster_backup_runs_total{{cluster=\"{cluster}\",result=\"success\"}}";

        // The start's catch-up fails; the next scheduled firing is months away, so a retry is due in seconds.
        await daemon.WaitUntilAsync(
            () => Task.FromResult(daemon.Log.Contains("will be tried again: retry 1 of 3 at ", StringComparison.Ordinal)), "the first retry scheduled", TimeSpan.FromSeconds(60));
        Assert.True(await daemon.ValueAsync(failures) >= 1);
        relay.Start();

        await daemon.WaitUntilAsync(async () => await daemon.ValueAsync(successes) >= 1, "a retry that committed a set", TimeSpan.FromSeconds(60));
        Assert.Equal(0, await daemon.ValueAsync($"cluster_backup_consecutive_failures{{cluster=\"{cluster}\"}}"));
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Single(System.Text.Json.JsonSerializer.Deserialize<System.Text.Json.JsonElement>(list.Output).EnumerateArray());
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Retries_stop_after_their_number_and_leave_the_next_try_to_the_schedule()
    {
        const string cluster = "daemon-retries-used-up";
        await using var relay = new TcpRelay(_rig.Moto.Port); // never started
        await using var daemon = await DaemonProcess.StartAsync(RetryConfig(cluster, relay, attempts: 2, delaySeconds: 1));
        var failures = $"cluster_backup_runs_total{{cluster=\"{cluster}\",result=\"failure\"}}";

        await daemon.WaitUntilAsync(
            () => Task.FromResult(daemon.Log.Contains("failed on retry 2, its last: the next try is its scheduled firing at ", StringComparison.Ordinal)),
            "the last retry failed", TimeSpan.FromSeconds(90));
        Assert.Equal(3, await daemon.ValueAsync(failures)); // the catch-up and two retries
        Assert.Equal(3, await daemon.ValueAsync($"cluster_backup_consecutive_failures{{cluster=\"{cluster}\"}}"));
        Assert.Contains("retry 1 of 2", daemon.Log, StringComparison.Ordinal);
        Assert.Contains("retry 2 of 2", daemon.Log, StringComparison.Ordinal);

        await Task.Delay(TimeSpan.FromSeconds(6)); // a third retry would have come by now
        Assert.Equal(3, await daemon.ValueAsync(failures));
        Assert.DoesNotContain("retry 3", daemon.Log, StringComparison.Ordinal);
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));
    }
}
