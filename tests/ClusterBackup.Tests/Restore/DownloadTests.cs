using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Restore;

/// <summary><c>download</c>: plain, checked files from a set; all or nothing when anything is wrong.</summary>
[Collection(RigCollection.Name)]
public sealed class DownloadTests(RigFixture fixture) : IDisposable
{
    private readonly LocalRig _rig = fixture.Rig;
    private readonly string _work = Directory.CreateTempSubdirectory("cluster-backup-download-").FullName;

    private async Task<(JsonObject Config, string SetId)> BackUpAsync(string cluster)
    {
        var config = _rig.Config("moto", cluster, "tunnel", _rig.Node1);
        var backup = await CliRunner.RunAsync(config, "backup");
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        return (config, JsonSerializer.Deserialize<JsonElement>(list.Output)[0].GetProperty("setId").GetString()!);
    }

    [Fact]
    public async Task Download_writes_checked_plain_files_that_standard_tools_read()
    {
        var (config, setId) = await BackUpAsync("download-ok");
        var target = Path.Combine(_work, "out");

        var result = await CliRunner.RunAsync(config, "download", "--cluster", "download-ok", "--to", target, "--identity", _rig.AgeIdentityFile);

        Assert.True(result.ExitCode == 0, result.ToString());
        result.AssertOutput($"downloaded set {setId} of download-ok: 4 files checked against the manifest");
        string[] expected = ["etcd-snapshot.db", "kubeconfigs-cp1.tar", "manifest.json", "manifests-cp1.tar", "pki-cp1.tar"];
        Assert.Equal(expected, Directory.GetFiles(target).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.All(Directory.GetFiles(target), f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
        var status = await Tools.RunAsync("etcdctl", ["snapshot", "status", Path.Combine(target, "etcd-snapshot.db"), "-w", "json"], new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains("./ca.key", await Tools.CheckAsync("tar", "-tf", Path.Combine(target, "pki-cp1.tar")), StringComparison.Ordinal);
        Assert.Contains("./admin.conf", await Tools.CheckAsync("tar", "-tf", Path.Combine(target, "kubeconfigs-cp1.tar")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_an_identity_an_encrypted_set_is_refused_naming_its_recipient()
    {
        var (config, _) = await BackUpAsync("download-no-identity");
        var target = Path.Combine(_work, "out");

        var result = await CliRunner.RunAsync(config, "download", "--cluster", "download-no-identity", "--to", target);

        Assert.Equal(1, result.ExitCode);
        result.AssertError($"is encrypted to {_rig.AgeRecipient}: pass --identity FILE");
        Assert.False(Directory.Exists(target));
    }

    [Fact]
    public async Task A_wrong_identity_fails_and_leaves_no_file()
    {
        var (config, _) = await BackUpAsync("download-wrong-identity");
        var wrongKey = Path.Combine(_work, "wrong.txt");
        await Tools.CheckAsync("age-keygen", "-o", wrongKey);
        var target = Path.Combine(_work, "out");

        var result = await CliRunner.RunAsync(config, "download", "--cluster", "download-wrong-identity", "--to", target, "--identity", wrongKey);

        Assert.Equal(1, result.ExitCode);
        result.AssertError("artifact etcd.db.zst.age: none of the given identities");
        Assert.Empty(Directory.GetFileSystemEntries(target));
    }

    [Theory]
    [InlineData("etcd.db.zst.age", "flip", 40)]
    [InlineData("etcd.db.zst.age", "flip", -20)]
    [InlineData("pki-cp1.tar.zst.age", "truncate", 100)]
    public async Task A_damaged_stored_object_fails_naming_the_artifact_and_leaves_no_file(string artifact, string damage, int where)
    {
        var cluster = $"download-{damage}-{(where < 0 ? "tail" : "head")}-{artifact[..3]}";
        var (config, setId) = await BackUpAsync(cluster);
        var key = $"backups/{cluster}/{setId}/{artifact}";
        var local = Path.Combine(_work, artifact);
        Assert.Equal(0, (await _rig.Moto.AwsAsync("s3", "cp", $"s3://{LocalRig.Bucket}/{key}", local)).ExitCode);
        var bytes = await File.ReadAllBytesAsync(local);
        if (damage == "flip")
        {
            bytes[where >= 0 ? where : bytes.Length + where] ^= 0x01;
        }
        else
        {
            bytes = bytes[..^where];
        }

        await File.WriteAllBytesAsync(local, bytes);
        Assert.Equal(0, (await _rig.Moto.AwsAsync("s3", "cp", local, $"s3://{LocalRig.Bucket}/{key}")).ExitCode);
        var target = Path.Combine(_work, "out");

        var result = await CliRunner.RunAsync(config, "download", "--cluster", cluster, "--to", target, "--identity", _rig.AgeIdentityFile);

        Assert.Equal(1, result.ExitCode);
        result.AssertError($"error: set {setId} of cluster {cluster}: artifact {artifact}: ");
        result.AssertError("use another set");
        Assert.Empty(Directory.GetFileSystemEntries(target));
    }

    [Fact]
    public async Task Progress_shows_on_a_terminal_and_never_otherwise()
    {
        var (config, _) = await BackUpAsync("download-progress");
        var configFile = await CliRunner.WriteConfigAsync(config);
        var binary = Path.Combine(AppContext.BaseDirectory, "cluster-backup");
        string Command(string target) => $"{binary} download --cluster download-progress --to {target} --identity {_rig.AgeIdentityFile} --config {configFile}";
        var environment = new Dictionary<string, string>(S3Server.Credentials);

        // script(1) gives the command a pseudo-terminal, as an operator's shell would.
        var terminal = await Tools.RunAsync("script", ["-qec", Command(Path.Combine(_work, "tty")), "/dev/null"], environment);
        var piped = await Tools.RunAsync("sh", ["-c", Command(Path.Combine(_work, "pipe"))], environment);

        Assert.True(terminal.ExitCode == 0, terminal.ToString());
        Assert.Contains("\r\u001b[Ketcd.db.zst.age: ", terminal.Output, StringComparison.Ordinal);
        Assert.True(piped.ExitCode == 0, piped.ToString());
        Assert.DoesNotContain("\u001b[K", piped.Output + piped.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_directory_without_room_for_the_sets_files_is_refused_before_anything_is_fetched()
    {
        await _rig.Etcd.PutBulkAsync(); // a snapshot of several MiB
        var (config, setId) = await BackUpAsync("download-no-room");
        var mount = Path.Combine(_work, "small");
        Directory.CreateDirectory(mount);
        await Tools.CheckAsync("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount);
        try
        {
            var target = Path.Combine(mount, "out");

            var result = await CliRunner.RunAsync(config, "download", "--cluster", "download-no-room", "--to", target, "--identity", _rig.AgeIdentityFile);

            Assert.Equal(1, result.ExitCode);
            result.AssertError($"error: {target} has 1.0 MiB free, and the files of set {setId} need ");
            result.AssertError(": choose a directory with room; nothing was written");
            Assert.Empty(Directory.EnumerateFileSystemEntries(mount));

            await Tools.CheckAsync("mount", "-o", "remount,size=64m", mount);
            var again = await CliRunner.RunAsync(config, "download", "--cluster", "download-no-room", "--to", target, "--identity", _rig.AgeIdentityFile);

            Assert.True(again.ExitCode == 0, again.ToString());
            Assert.Equal(5, Directory.GetFiles(target).Length);
        }
        finally
        {
            await Tools.RunAsync("umount", ["-l", mount]);
        }
    }

    [Fact]
    public async Task An_unknown_set_is_refused()
    {
        var (config, _) = await BackUpAsync("download-unknown-set");

        var result = await CliRunner.RunAsync(config, "download", "--cluster", "download-unknown-set", "--set", "20200101T000000Z", "--to", _work, "--identity", _rig.AgeIdentityFile);

        Assert.Equal(1, result.ExitCode);
        result.AssertError("cluster download-unknown-set has no complete set 20200101T000000Z");
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
