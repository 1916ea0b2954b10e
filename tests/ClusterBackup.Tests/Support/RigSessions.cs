using ClusterBackup.Configuration;
using ClusterBackup.Rig;
using ClusterBackup.Sources.Ssh;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterBackup.Tests.Support;

/// <summary>An SSH session to the rig's first node, as the agent opens one.</summary>
internal static class RigSessions
{
    /// <summary>As the configurations' SSH user, or with <paramref name="sudo"/> as the rig's sudo user with <c>Ssh.Sudo</c>.</summary>
    public static async Task<NodeSession> ConnectAsync(LocalRig rig, string cluster, string mode, bool sudo = false)
    {
        var config = rig.Config(Path.GetTempPath(), cluster, mode, rig.Node1);
        if (sudo)
        {
            var ssh = config["ClusterBackup"]!["Defaults"]!["Ssh"]!;
            ssh["User"] = LocalRig.SudoUser;
            ssh["Sudo"] = true;
        }

        var settings = ConfigurationLoader.Load(await CliRunner.WriteConfigAsync(config));
        return await new SshNodeConnector(NullLogger<SshNodeConnector>.Instance).ConnectAsync(settings.Clusters[0].ControlPlanes[0]);
    }
}
