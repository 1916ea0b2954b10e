using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Scheduling;

/// <summary>Faults under the daemon: every failed run is counted, so the alerts can fire, and a recovery shows.</summary>
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
}
