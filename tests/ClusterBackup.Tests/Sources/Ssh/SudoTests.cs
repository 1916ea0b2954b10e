using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Sources.Ssh;

/// <summary>
/// <c>Ssh.Sudo</c>: a non-root SSH user (made by tests/setup, passwordless sudo) backs up the
/// root-only PKI and etcd client key through <c>sudo -n</c>, and is refused without it.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class SudoTests(RigFixture fixture) : IDisposable
{
    private readonly LocalRig _rig = fixture.Rig;
    private readonly string _store = Directory.CreateTempSubdirectory("cluster-backup-sudo-").FullName;

    public void Dispose() => Directory.Delete(_store, recursive: true);

    private JsonObject Config(string cluster, string mode, bool sudo)
    {
        var config = _rig.Config(_store, cluster, mode, _rig.Node1);
        var ssh = config["ClusterBackup"]!["Defaults"]!["Ssh"]!;
        ssh["User"] = LocalRig.SudoUser;
        ssh["Sudo"] = sudo;
        return config;
    }


    [Theory]
    [InlineData("tunnel")]
    [InlineData("exec")]
    public async Task A_non_root_user_with_sudo_backs_up_a_set_that_verifies(string mode)
    {
        var cluster = $"sudo-{mode}";
        var before = LocalRig.NodeTempDirectories();
        var config = Config(cluster, mode, sudo: true);

        var backup = await CliRunner.RunAsync(config, "backup");
        var verify = await CliRunner.RunAsync(config, "verify", "--cluster", cluster, "--identity", _rig.AgeIdentityFile);

        Assert.True(backup.ExitCode == 0, $"{backup}\n{_rig.Node1.Log}");
        backup.AssertOutput($"{cluster}: committed set");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        verify.AssertOutput("etcd's SHA-256 trailer checks out");
        Assert.Empty(LocalRig.NodeTempDirectories().Except(before)); // the snapshot copy on the node is gone
    }

    [Fact]
    public async Task Without_sudo_the_root_only_files_are_refused_naming_node_and_step()
    {
        var backup = await CliRunner.RunAsync(Config("sudo-off", "tunnel", sudo: false), "backup");

        Assert.Equal(1, backup.ExitCode);
        backup.AssertError("node cp1");
        backup.AssertError("Permission denied");
    }
}
