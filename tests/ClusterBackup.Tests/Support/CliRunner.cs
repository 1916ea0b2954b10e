using System.Text.Json.Nodes;
using ClusterBackup.Cli;

namespace ClusterBackup.Tests.Support;

public sealed record CliResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

/// <summary>Runs the command line in-process, as the binary would, capturing its output.</summary>
internal static class CliRunner
{
    public static async Task<CliResult> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApp.RunAsync(args, stdout, stderr);
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Writes the configuration to a temp file and runs the command with --config.</summary>
    public static async Task<CliResult> RunAsync(JsonObject config, params string[] args)
    {
        var path = await WriteConfigAsync(config);
        return await RunAsync([.. args, "--config", path]);
    }

    /// <summary>Runs a backup that must commit one set, and returns its id once the next second has begun (set ids are per second).</summary>
    public static async Task<string> CommittedSetAsync(JsonObject config)
    {
        var backup = await RunAsync(config, "backup");
        Assert.True(backup.ExitCode == 0, backup.ToString());
        await Task.Delay(1100);
        return backup.Output.Split("committed set ")[1][..16];
    }

    public static async Task<string> WriteConfigAsync(JsonObject config)
    {
        var directory = Directory.CreateTempSubdirectory("cluster-backup-config-").FullName;
        var path = Path.Combine(directory, "appsettings.json");
        await File.WriteAllTextAsync(path, config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        return path;
    }
}

internal static class CliResultAssertions
{
    public static void AssertError(this CliResult result, string expected) =>
        Assert.True(result.Error.Contains(expected, StringComparison.Ordinal), $"stderr lacks: {expected}\n{result}");

    public static void AssertOutput(this CliResult result, string expected) =>
        Assert.True(result.Output.Contains(expected, StringComparison.Ordinal), $"stdout lacks: {expected}\n{result}");
}
