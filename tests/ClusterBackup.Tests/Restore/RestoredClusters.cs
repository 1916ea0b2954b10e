using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Restore;

/// <summary>What the restore tests do to a cluster, and read back from it.</summary>
internal static class RestoredClusters
{
    /// <summary>Puts keys, backs up, then writes more keys the set must not have.</summary>
    public static async Task<(JsonObject Config, Dictionary<string, string> InSet)> BackUpAsync(EtcdCluster cluster, string name)
    {
        var inSet = Enumerable.Range(0, 10).ToDictionary(i => $"/registry/{name}/{i}", i => $"value {i}");
        foreach (var (key, value) in inSet)
        {
            Assert.Equal(0, (await cluster.EtcdctlAsync(["put", key, value])).ExitCode);
        }

        var config = cluster.Config(name);
        var backup = await CliRunner.RunAsync(config, "backup");
        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.Equal(0, (await cluster.EtcdctlAsync(["put", $"/registry/{name}/after-the-backup", "x"])).ExitCode);
        return (config, inSet);
    }

    /// <summary>Puts 2 MiB of values outside the keys the set is checked on: a snapshot of 2 MB or more, whose upload takes a while.</summary>
    public static async Task FillAsync(EtcdCluster cluster, string name)
    {
        var filler = new string('x', 32 * 1024);
        for (var i = 0; i < 64; i++)
        {
            Assert.Equal(0, (await cluster.EtcdctlAsync(["put", $"/registry/{name}-filler/{i}", filler])).ExitCode);
        }
    }

    public static async Task<Dictionary<string, string>> ReadAsync(EtcdCluster cluster, string name)
    {
        var result = await cluster.EtcdctlAsync(["get", $"/registry/{name}/", "--prefix", "-w", "json"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        var json = JsonSerializer.Deserialize<JsonElement>(result.Output);
        return !json.TryGetProperty("kvs", out var kvs)
            ? []
            : kvs.EnumerateArray().ToDictionary(
                kv => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(kv.GetProperty("key").GetString()!)),
                kv => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(kv.GetProperty("value").GetString()!)));
    }

    public static string[] Snapshot(EtcdCluster.Member member) =>
        Directory.GetFileSystemEntries(Path.GetDirectoryName(member.DataDirectory)!, "*", SearchOption.TopDirectoryOnly)
            .Concat(Directory.GetFiles(member.Node.ManifestsDirectory))
            .Order(StringComparer.Ordinal).ToArray();

    /// <summary>Every file of a PKI dir with its mode and content.</summary>
    public static string[] Pki(string directory) =>
        Directory.GetFiles(directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => $"{f} {File.GetUnixFileMode(f)} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f)))}")
            .ToArray();

    /// <summary>The cluster is healthy again and holds exactly the set's keys.</summary>
    public static async Task AssertHoldsTheSetAsync(EtcdCluster cluster, string name, Dictionary<string, string> inSet)
    {
        await cluster.WaitHealthyAsync();
        Assert.Equal(inSet.OrderBy(k => k.Key), (await ReadAsync(cluster, name)).OrderBy(k => k.Key));
    }
}
