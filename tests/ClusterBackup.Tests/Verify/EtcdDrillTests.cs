using System.Net;
using System.Net.Sockets;
using ClusterBackup.Configuration;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;
using ClusterBackup.Verify;

namespace ClusterBackup.Tests.Verify;

/// <summary>The restore drill against a real etcd snapshot, and the loopback ports it runs on.</summary>
[Collection(RigCollection.Name)]
public sealed class EtcdDrillTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    private async Task<string> SnapshotAsync()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-drill-test-").FullName, "etcd.db");
        var saved = await _rig.Etcd.EtcdctlAsync(["snapshot", "save", file]);
        Assert.True(saved.ExitCode == 0, saved.ToString());
        return file;
    }

    /// <summary>A listener that really holds a loopback port, as another program would.</summary>
    private static (TcpListener Listener, int Port) Squat()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return (listener, ((IPEndPoint)listener.LocalEndpoint).Port);
    }

    [Fact]
    public async Task A_port_taken_before_etcd_binds_it_costs_a_retry_not_the_drill()
    {
        var snapshot = await SnapshotAsync();
        var (squatter, taken) = Squat();
        using var _ = squatter;
        var picks = 0;
        var drill = new EtcdDrill(new VerifyOptions(), TimeProvider.System, () => ++picks == 1 ? taken : LoopbackPorts.Next());

        var result = await drill.RunAsync(snapshot);

        Assert.True(result.Revision > 0);
        Assert.Equal(4, picks); // two for the attempt that met the taken port, two for the one that worked
    }

    [Fact]
    public async Task Ports_that_stay_taken_fail_the_drill_with_the_reason()
    {
        var snapshot = await SnapshotAsync();
        var (squatter, taken) = Squat();
        using var _ = squatter;
        var drill = new EtcdDrill(new VerifyOptions(), TimeProvider.System, () => taken);

        var failure = await Assert.ThrowsAsync<DrillFailedException>(() => drill.RunAsync(snapshot));

        Assert.Contains("could not bind its loopback ports", failure.Message, StringComparison.Ordinal);
        Assert.Contains("address already in use", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Loopback_ports_are_below_the_ephemeral_range_and_never_handed_out_twice()
    {
        var ephemeralLow = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split('\t', ' ')[0], System.Globalization.CultureInfo.InvariantCulture);

        var ports = Enumerable.Range(0, 300).Select(_ => LoopbackPorts.Next()).ToList();

        Assert.All(ports, port => Assert.InRange(port, 1024, ephemeralLow - 1));
        Assert.Equal(ports.Count, ports.Distinct().Count());
    }
}
