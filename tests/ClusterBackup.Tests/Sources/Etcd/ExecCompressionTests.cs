using System.Security.Cryptography;
using System.Text.Json;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Sources.Etcd;

/// <summary>
/// Exec mode compresses the saved snapshot with the node's own zstd and sends that: stored as the
/// node compressed it, still checked against etcd's trailer, and sent as saved where zstd is missing.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class ExecCompressionTests(RigFixture fixture) : IDisposable
{
    private readonly LocalRig _rig = fixture.Rig;
    private readonly string _work = Directory.CreateTempSubdirectory("cluster-backup-test-").FullName;

    [Fact]
    public async Task The_node_compresses_the_snapshot_and_the_set_stores_its_zstd_byte_for_byte_and_restores_with_the_standard_tools()
    {
        const string cluster = "exec-zstd";
        await _rig.Etcd.PutBulkAsync();
        var sent = Path.Combine(_work, "sent.zst");
        var calls = Path.Combine(_work, "calls");
        // The node's zstd, which also keeps a copy of what it wrote.
        var zstd = await ScriptAsync($"""
            #!/bin/bash
            echo "$*" >> '{calls}'
            /usr/bin/zstd "$@" || exit $?
            cp "${"{@: -1}"}" '{sent}'
            """);
        var config = _rig.Config("moto", cluster, "exec", _rig.Node1);
        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Zstd"] = zstd;
        var before = LocalRig.NodeTempDirectories();

        var backup = await CliRunner.RunAsync(config, "backup");

        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.Matches(@"^-q -1 -T2 /var/tmp/cluster-backup\.\w+/snapshot\.db -o /var/tmp/cluster-backup\.\w+/snapshot\.db\.zst\n$", await File.ReadAllTextAsync(calls));
        Assert.Empty(await LocalRig.NodeTempDirectoriesLeftAsync(before));

        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        var manifest = JsonSerializer.Deserialize<JsonElement>(list.Output)[0];
        var etcd = manifest.GetProperty("artifacts").EnumerateArray().Single(a => a.GetProperty("kind").GetString() == "etcd-snapshot");
        var stored = Path.Combine(_work, "etcd.db.zst.age");
        await _rig.Moto.AwsAsync("s3", "cp", $"s3://{LocalRig.Bucket}/backups/{cluster}/{manifest.GetProperty("setId").GetString()}/etcd.db.zst.age", stored);

        // age gives back what the node's zstd wrote; zstd and etcdctl take it from there.
        await Tools.CheckAsync("age", "-d", "-i", _rig.AgeIdentityFile, "-o", Path.Combine(_work, "etcd.db.zst"), stored);
        Assert.Equal(await File.ReadAllBytesAsync(sent), await File.ReadAllBytesAsync(Path.Combine(_work, "etcd.db.zst")));
        await Tools.CheckAsync("zstd", "-q", "-d", Path.Combine(_work, "etcd.db.zst"), "-o", Path.Combine(_work, "etcd.db"));
        Assert.Equal(etcd.GetProperty("plainSha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(_work, "etcd.db")))));
        await Tools.CheckAsync("etcdctl", ["snapshot", "status", Path.Combine(_work, "etcd.db")], new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });

        var verify = await CliRunner.RunAsync(config, "verify", "--cluster", cluster);
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task A_node_without_zstd_sends_the_snapshot_as_saved_and_says_so()
    {
        const string cluster = "exec-no-zstd";
        var config = _rig.Config("moto", cluster, "exec", _rig.Node1);
        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Zstd"] = "/nonexistent/zstd";
        var before = LocalRig.NodeTempDirectories();

        var backup = await CliRunner.RunAsync(config, "backup");

        Assert.True(backup.ExitCode == 0, backup.ToString());
        backup.AssertError("cp1 sends the snapshot as saved: its zstd (/nonexistent/zstd) is missing or failed (Etcd.Zstd)");
        Assert.Empty(await LocalRig.NodeTempDirectoriesLeftAsync(before));
        var verify = await CliRunner.RunAsync(config, "verify", "--cluster", cluster);
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task A_node_with_room_for_the_snapshot_but_not_for_a_compressed_copy_beside_it_sends_it_as_saved()
    {
        const string cluster = "exec-zstd-room";
        await _rig.Etcd.PutBulkAsync(); // a database of several MiB
        await using var node = await _rig.StartNodeWithVarTmpAsync("cp-tight-tmp", "512m");
        var config = _rig.Config("moto", cluster, "exec", node);
        var roomy = await CliRunner.RunAsync(config, "backup");
        Assert.True(roomy.ExitCode == 0, roomy.ToString());
        Assert.DoesNotContain("sends the snapshot as saved", roomy.Error, StringComparison.Ordinal);
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        var database = JsonSerializer.Deserialize<JsonElement>(list.Output)[0].GetProperty("etcd").GetProperty("dbSizeBytes").GetInt64();

        // Room for the database once with a tenth of the filesystem left, not twice.
        await node.ResizeVarTmpAsync($"{(long)Math.Ceiling(database * 1.5 / 0.9 / (1024 * 1024))}m");
        var tight = await CliRunner.RunAsync(config, "backup");

        Assert.True(tight.ExitCode == 0, tight.ToString());
        tight.AssertError("cp-tight-tmp sends the snapshot as saved: /var/tmp has no room for a compressed copy beside it, or df could not say");
        Assert.Empty(Directory.EnumerateFileSystemEntries(node.VarTmp));
        var verify = await CliRunner.RunAsync(config, "verify", "--cluster", cluster);
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task A_zstd_that_compresses_something_else_fails_the_node_and_stores_nothing_and_the_next_run_succeeds()
    {
        const string cluster = "exec-zstd-lies";
        // zstd that compresses only the start of the snapshot: valid zstd, not etcd's file.
        var lying = await ScriptAsync("""
            #!/bin/bash
            head -c 8192 "$4" | /usr/bin/zstd -q -o "$6"
            """);
        var config = _rig.Config("moto", cluster, "exec", _rig.Node1);
        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Zstd"] = lying;
        var before = LocalRig.NodeTempDirectories();

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.True(result.ExitCode == 1, result.ToString());
        result.AssertError("error: cluster exec-zstd-lies: node cp1: etcd snapshot: the snapshot is 8192 bytes, not a database plus etcd's 32-byte SHA-256 trailer: the stream was cut short");
        Assert.Empty(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
        Assert.Empty(await _rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"));
        Assert.Empty(await LocalRig.NodeTempDirectoriesLeftAsync(before));

        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Zstd"] = "zstd";
        var next = await CliRunner.RunAsync(config, "backup");
        Assert.True(next.ExitCode == 0, next.ToString());
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        Assert.Single(JsonSerializer.Deserialize<JsonElement>(list.Output).EnumerateArray());
    }

    private async Task<string> ScriptAsync(string content)
    {
        var path = Path.Combine(_work, $"zstd-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(path, content + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
