using System.Text.Json.Nodes;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Support;

/// <summary>The real cluster-backup binary running one command as its own process: to race it, or kill it.</summary>
internal static class CliProcess
{
    public static async Task<ExternalProcess> StartAsync(JsonObject config, string name, params string[] args)
    {
        var path = await CliRunner.WriteConfigAsync(config);
        return ExternalProcess.Start(
            name, Path.Combine(AppContext.BaseDirectory, "cluster-backup"), [.. args, "--config", path],
            Path.GetDirectoryName(path)!, S3Server.Credentials);
    }
}
