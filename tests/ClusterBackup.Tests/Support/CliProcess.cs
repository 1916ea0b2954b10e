using System.Text.Json.Nodes;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Support;

/// <summary>The real cluster-backup binary running one command as its own process: to race it, or kill it.</summary>
internal static class CliProcess
{
    public static Task<ExternalProcess> StartAsync(JsonObject config, string name, params string[] args) =>
        StartAsync(config, name, new Dictionary<string, string>(), args);

    /// <param name="environment">Added to the S3 credentials; e.g. STATE_DIRECTORY, for a process that stands for another host.</param>
    public static async Task<ExternalProcess> StartAsync(JsonObject config, string name, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var path = await CliRunner.WriteConfigAsync(config);
        return ExternalProcess.Start(
            name, Path.Combine(AppContext.BaseDirectory, "cluster-backup"), [.. args, "--config", path],
            Path.GetDirectoryName(path)!, S3Server.Credentials.Concat(environment).ToDictionary());
    }

    /// <summary>The environment of a process standing for a host of its own: its own state directory, so its own run locks.</summary>
    public static IReadOnlyDictionary<string, string> OtherHost() =>
        new Dictionary<string, string> { ["STATE_DIRECTORY"] = Directory.CreateTempSubdirectory("cluster-backup-host-").FullName };
}
