using System.Text.Json;
using ClusterBackup.Catalog;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Backup;

/// <summary>
/// A backup restores with standard tools alone: the artifacts are fetched with the aws CLI (or
/// read from the directory), decompressed with zstd, restored with etcdctl into a new etcd, and
/// every key read back; the PKI tar keeps its modes.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class BackupEndToEndTests(RigFixture fixture) : IAsyncLifetime
{
    private readonly LocalRig _rig = fixture.Rig;
    private readonly string _work = Directory.CreateTempSubdirectory("cluster-backup-e2e-").FullName;
    private readonly Dictionary<string, string> _known = [];

    public async Task InitializeAsync()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        for (var i = 0; i < 20; i++)
        {
            var key = $"/registry/e2e-{run}/key-{i:00}";
            var value = $"value {i} of {run}: {new string('x', i * 10)}";
            _known[key] = value;
            await _rig.Etcd.PutAsync(key, value);
        }
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_work, recursive: true);
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData("tunnel", "moto", true)]
    [InlineData("exec", "moto", true)]
    [InlineData("tunnel", "s3rver", true)]
    [InlineData("exec", "filesystem", true)]
    [InlineData("tunnel", "filesystem", false)]
    public async Task Backup_then_restore_with_standard_tools_gives_back_every_key(string mode, string storage, bool encrypted)
    {
        var cluster = $"e2e-{mode}-{storage}-{(encrypted ? "age" : "plain")}";
        var storeDirectory = Path.Combine(_work, "store");
        var config = _rig.Config(storage == "filesystem" ? storeDirectory : storage, cluster, mode);
        if (!encrypted)
        {
            config["ClusterBackup"]!["Encryption"] = new System.Text.Json.Nodes.JsonObject { ["Disabled"] = true };
        }

        var result = await CliRunner.RunAsync(config, "backup");
        Assert.True(result.ExitCode == 0, $"{result}\n{_rig.AllLogs()}");
        result.AssertOutput($"{cluster}: committed set");

        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        Assert.Equal(0, list.ExitCode);
        var manifest = JsonSerializer.Deserialize<JsonElement>(list.Output)[0];
        var setId = manifest.GetProperty("setId").GetString()!;
        Assert.Equal(mode, manifest.GetProperty("etcd").GetProperty("mode").GetString());

        var downloaded = Path.Combine(_work, "downloaded");
        Directory.CreateDirectory(downloaded);
        var suffix = encrypted ? ".zst.age" : ".zst";
        foreach (var name in new[] { "etcd.db", "pki-cp1.tar", "pki-cp2.tar", "manifests-cp1.tar" })
        {
            await FetchAsync(storage, storeDirectory, $"backups/{cluster}/{setId}/{name}{suffix}", Path.Combine(downloaded, name + suffix));
            await OpenAsync(Path.Combine(downloaded, name + suffix), Path.Combine(downloaded, name), encrypted);
        }

        await FetchAsync(storage, storeDirectory, $"backups/{cluster}/{setId}/manifest.json", Path.Combine(downloaded, "manifest.json"));

        // What is stored gives nothing away when encrypted: an age file, no PEM key, no bolt page, not even zstd.
        var storedPki = await File.ReadAllBytesAsync(Path.Combine(downloaded, "pki-cp1.tar" + suffix));
        var storedEtcd = await File.ReadAllBytesAsync(Path.Combine(downloaded, "etcd.db" + suffix));
        var zstdTest = await Tools.RunAsync("zstd", ["-q", "-t", Path.Combine(downloaded, "etcd.db" + suffix)]);
        Assert.Equal(encrypted, zstdTest.ExitCode != 0);
        if (encrypted)
        {
            // A key name, not bolt's 4-byte magic: 4 random bytes turn up by chance in tens of MB of ciphertext.
            Assert.True(storedEtcd.AsSpan().StartsWith("age-encryption.org/v1\n"u8));
            Assert.True(storedPki.AsSpan().IndexOf("PRIVATE KEY"u8) < 0);
            Assert.True(storedEtcd.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(_known.Keys.First())) < 0);
            Assert.Equal(_rig.AgeRecipient, manifest.GetProperty("artifacts")[0].GetProperty("encryption").GetProperty("recipients")[0].GetString());
        }

        // etcdctl restores the snapshot (checking etcd's SHA-256 trailer) into a fresh data dir.
        var restoredDir = Path.Combine(_work, "restored");
        var peer = Tools.FreePort();
        await Tools.CheckAsync("etcdctl", ["snapshot", "restore", Path.Combine(downloaded, "etcd.db"), "--data-dir", restoredDir,
                "--name", "restored", "--initial-cluster", $"restored=http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}"],
            new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });
        await using (var restored = await EtcdServer.StartAsync("restored", restoredDir, Path.Combine(_work, "logs"), pki: null))
        {
            var prefix = _known.Keys.First()[..(_known.Keys.First().LastIndexOf('/') + 1)];
            var actual = await restored.GetPrefixAsync(prefix);
            Assert.Equal(_known.OrderBy(k => k.Key), actual.OrderBy(k => k.Key));
        }

        // The PKI archive keeps modes: the CA private key stays 0600.
        var listing = await Tools.CheckAsync("tar", "-tvf", Path.Combine(downloaded, "pki-cp1.tar"));
        Assert.Matches(@"(?m)^-rw------- .* \./ca\.key$", listing);
        Assert.Matches(@"(?m)^-rw------- .* \./etcd/ca\.key$", listing);
        Assert.Matches(@"(?m)^-rw-r--r-- .* \./ca\.crt$", listing);

        // The manifest's hashes are those of what is stored and of the plain bytes.
        var stored = JsonSerializer.Deserialize<JsonElement>(await File.ReadAllTextAsync(Path.Combine(downloaded, "manifest.json")));
        var etcd = stored.GetProperty("artifacts").EnumerateArray().Single(a => a.GetProperty("kind").GetString() == ArtifactKinds.EtcdSnapshot);
        Assert.Equal(await Sha256Async(Path.Combine(downloaded, "etcd.db" + suffix)), etcd.GetProperty("storedSha256").GetString());
        Assert.Equal(await Sha256Async(Path.Combine(downloaded, "etcd.db")), etcd.GetProperty("plainSha256").GetString());
        Assert.True(stored.GetProperty("etcd").GetProperty("keyCount").GetInt64() >= _known.Count);
    }

    /// <summary>age -d (when encrypted), then zstd -d: the standard tools, as the README's manual restore.</summary>
    private async Task OpenAsync(string stored, string plain, bool encrypted)
    {
        var command = encrypted ? "age -d -i \"$0\" \"$1\" | zstd -q -d > \"$2\"" : "zstd -q -d < \"$1\" > \"$2\"";
        await Tools.CheckAsync("sh", "-c", command, _rig.AgeIdentityFile, stored, plain);
    }

    private async Task FetchAsync(string storage, string storeDirectory, string key, string target)
    {
        if (storage == "filesystem")
        {
            File.Copy(Path.Combine(storeDirectory, key), target);
            return;
        }

        var server = storage == "moto" ? _rig.Moto : _rig.S3rver;
        var result = await server.AwsAsync("s3", "cp", $"s3://{LocalRig.Bucket}/{key}", target);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    private static async Task<string> Sha256Async(string path)
    {
        await using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(file));
    }
}
