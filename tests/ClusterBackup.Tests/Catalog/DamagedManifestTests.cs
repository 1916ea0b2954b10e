using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Catalog;

/// <summary>A set whose manifest cannot be read is reported as damaged everywhere, and never costs an intact set its place.</summary>
[Collection(RigCollection.Name)]
public sealed class DamagedManifestTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public async Task A_truncated_newest_manifest_is_listed_and_verified_as_damaged_and_prune_keeps_the_intact_older_set()
    {
        const string cluster = "damaged-newest";
        var root = Directory.CreateTempSubdirectory("cluster-backup-damaged-").FullName;
        var config = _rig.Config(root, cluster, "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Encryption"]!["IdentityFile"] = _rig.AgeIdentityFile;
        var older = await BackupAsync(config);
        var newer = await BackupAsync(config);
        var manifest = Path.Combine(root, "backups", cluster, newer, "manifest.json");
        var text = await File.ReadAllTextAsync(manifest);
        await File.WriteAllTextAsync(manifest, text[..(text.Length / 2)]);

        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster);
        Assert.Equal(0, list.ExitCode);
        Assert.Matches($@"{cluster}\s+{newer}\s+.*DAMAGED: manifest.json cannot be read", list.Output);
        list.AssertOutput(older);
        list.AssertError($"warning: cluster {cluster}: set {newer} is DAMAGED: {manifest} cannot be read: not a valid manifest");

        var json = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        Assert.Equal([older], JsonSerializer.Deserialize<JsonElement>(json.Output).EnumerateArray().Select(s => s.GetProperty("setId").GetString()));
        json.AssertError($"set {newer} is DAMAGED");

        var all = await CliRunner.RunAsync(config, "verify", "--cluster", cluster, "--set", "all");
        Assert.Equal(1, all.ExitCode);
        all.AssertError($"error: cluster {cluster}: set {newer}: {manifest} cannot be read: not a valid manifest");
        all.AssertOutput($"{cluster} {older}: OK");
        all.AssertOutput("verified 2 sets: 1 good, 1 bad");

        var latest = await CliRunner.RunAsync(config, "verify", "--cluster", cluster);
        Assert.Equal(1, latest.ExitCode);
        latest.AssertError($"set {newer}: {manifest} cannot be read");

        var named = await CliRunner.RunAsync(config, "verify", "--cluster", cluster, "--set", newer);
        Assert.Equal(1, named.ExitCode);
        named.AssertError($"error: cluster {cluster}: set {newer} is damaged: {manifest} cannot be read");

        config["ClusterBackup"]!["Defaults"]!["Retention"] = new JsonObject { ["KeepLast"] = 1 };
        var prune = await CliRunner.RunAsync(config, "prune", "--cluster", cluster);
        Assert.True(prune.ExitCode == 0, prune.ToString());
        prune.AssertOutput("1 DAMAGED");
        prune.AssertOutput("removed 0 sets");
        Assert.True(File.Exists(Path.Combine(root, "backups", cluster, older, "manifest.json")), prune.ToString());
        Assert.True(File.Exists(manifest));

        // The daemon pages about it from start-up on.
        var daemonConfig = config.DeepClone().AsObject();
        daemonConfig["ClusterBackup"]!["Clusters"]![0]!["Schedule"] = "0 0 1 1 *";
        await using (var daemon = await DaemonProcess.StartAsync(daemonConfig))
        {
            await daemon.WaitUntilAsync(
                async () => await daemon.ValueAsync($"cluster_backup_damaged_sets{{cluster=\"{cluster}\"}}") == 1, "the damaged set counted", TimeSpan.FromSeconds(60));
            Assert.Equal(1, await daemon.ValueAsync($"cluster_backup_sets{{cluster=\"{cluster}\"}}"));
            Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));
        }

        // The next backup commits; retention then keeps it and the damaged set, and removes the older one.
        var next = await BackupAsync(config);
        Assert.False(Directory.Exists(Path.Combine(root, "backups", cluster, older)));
        Assert.True(File.Exists(manifest));
        var after = await CliRunner.RunAsync(config, "verify", "--cluster", cluster, "--set", next);
        Assert.True(after.ExitCode == 0, after.ToString());
    }

    [Fact]
    public async Task A_manifest_of_another_set_copied_over_is_damaged_not_trusted()
    {
        const string cluster = "damaged-swapped";
        var root = Directory.CreateTempSubdirectory("cluster-backup-damaged-").FullName;
        var config = _rig.Config(root, cluster, "tunnel", _rig.Node1);
        var first = await BackupAsync(config);
        var second = await BackupAsync(config);
        File.Copy(Path.Combine(root, "backups", cluster, first, "manifest.json"), Path.Combine(root, "backups", cluster, second, "manifest.json"), overwrite: true);

        var verify = await CliRunner.RunAsync(config, "verify", "--cluster", cluster, "--set", "all");

        Assert.Equal(1, verify.ExitCode);
        verify.AssertError($"set {second}: {Path.Combine(root, "backups", cluster, second, "manifest.json")} cannot be read: it names cluster {cluster} set {first}");
    }

    private static async Task<string> BackupAsync(JsonObject config)
    {
        var result = await CliRunner.RunAsync(config, "backup");
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Output.Split("committed set ")[1][..16];
    }
}
