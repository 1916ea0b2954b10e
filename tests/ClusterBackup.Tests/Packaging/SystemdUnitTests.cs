using System.Globalization;
using System.Text.RegularExpressions;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Packaging;

/// <summary>systemd/cluster-backup.service, checked by systemd's own analyzer.</summary>
public sealed partial class SystemdUnitTests
{
    private static readonly string Unit = Path.Combine(Tools.RepositoryRoot(), "systemd", "cluster-backup.service");

    [Fact]
    public async Task The_unit_verifies_clean()
    {
        // verify wants ExecStart's binary to exist: point it at the one just built.
        var directory = Directory.CreateTempSubdirectory("cluster-backup-unit-").FullName;
        var copy = Path.Combine(directory, "cluster-backup.service");
        var binary = Path.Combine(AppContext.BaseDirectory, "cluster-backup");
        await File.WriteAllTextAsync(copy, (await File.ReadAllTextAsync(Unit)).Replace("/usr/bin/cluster-backup", binary, StringComparison.Ordinal));

        // Its man page is checked where it is installed, in DebianPackageTests.
        var result = await Tools.RunAsync("systemd-analyze", ["verify", "--man=no", copy]);

        Assert.True(result.ExitCode == 0 && result.Error.Trim().Length == 0, result.ToString());
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task The_unit_is_hardened_to_an_exposure_of_2_or_less()
    {
        var result = await Tools.RunAsync("systemd-analyze", ["security", "--offline=yes", Unit]);

        var match = Exposure().Match(result.Output);
        Assert.True(match.Success, result.ToString());
        Assert.InRange(double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), 0, 2.0);
    }

    [Fact]
    public async Task The_unit_runs_the_daemon_as_a_notify_service_that_never_restart_loops_on_a_bad_config()
    {
        var lines = (await File.ReadAllLinesAsync(Unit)).Select(l => l.Trim()).ToList();

        Assert.Contains("Type=notify", lines);
        Assert.Contains("ExecStart=/usr/bin/cluster-backup run", lines);
        Assert.Contains("RestartPreventExitStatus=78", lines);
        Assert.Contains("User=cluster-backup", lines);
    }

    [GeneratedRegex(@"Overall exposure level for cluster-backup\.service: (\d+\.\d+)")]
    private static partial Regex Exposure();
}
