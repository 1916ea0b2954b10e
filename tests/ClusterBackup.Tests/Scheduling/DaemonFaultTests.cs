using System.Net;
using System.Net.Sockets;
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
}
