using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Verify;

/// <summary><c>verify</c>: stored hashes, decrypted content, etcd's trailer, and restore drills into a real etcd.</summary>
[Collection(RigCollection.Name)]
public sealed class VerifyTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    private async Task<(JsonObject Config, List<string> SetIds)> BackUpAsync(string cluster, int sets = 1)
    {
        var config = _rig.Config("moto", cluster, "tunnel", _rig.Node1);
        for (var i = 0; i < sets; i++)
        {
            var backup = await CliRunner.RunAsync(config, "backup");
            Assert.True(backup.ExitCode == 0, backup.ToString());
        }

        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        return (config, JsonSerializer.Deserialize<JsonElement>(list.Output).EnumerateArray().Select(s => s.GetProperty("setId").GetString()!).ToList());
    }

    private async Task TamperAsync(string key, Func<byte[], byte[]> change)
    {
        var local = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-tamper-").FullName, "object");
        Assert.Equal(0, (await _rig.Moto.AwsAsync("s3", "cp", $"s3://{LocalRig.Bucket}/{key}", local)).ExitCode);
        await File.WriteAllBytesAsync(local, change(await File.ReadAllBytesAsync(local)));
        Assert.Equal(0, (await _rig.Moto.AwsAsync("s3", "cp", local, $"s3://{LocalRig.Bucket}/{key}")).ExitCode);
        if (key.EndsWith("/manifest.json", StringComparison.Ordinal))
        {
            // Signed again with the agent's own key: a manifest that is authentic but wrong, so that the hashes are what fails.
            await Tools.CheckAsync("ssh-keygen", "-Y", "sign", "-f", _rig.SigningKey, "-n", "cluster-backup", local);
            Assert.Equal(0, (await _rig.Moto.AwsAsync("s3", "cp", local + ".sig", $"s3://{LocalRig.Bucket}/{key}.sig")).ExitCode);
        }
    }

    [Fact]
    public async Task A_good_set_passes_plain_with_the_identity_and_deep()
    {
        var (config, sets) = await BackUpAsync("verify-good");

        var plain = await CliRunner.RunAsync(config, "verify", "--cluster", "verify-good");
        var decrypted = await CliRunner.RunAsync(config, "verify", "--cluster", "verify-good", "--identity", _rig.AgeIdentityFile);
        var deep = await CliRunner.RunAsync(config, "verify", "--cluster", "verify-good", "--deep", "--identity", _rig.AgeIdentityFile);

        Assert.True(plain.ExitCode == 0, plain.ToString());
        plain.AssertOutput($"verify-good {sets[0]}: OK");
        plain.AssertOutput("etcd.db.zst.age: stored bytes match the manifest (not decrypted: no identity)");
        Assert.True(decrypted.ExitCode == 0, decrypted.ToString());
        decrypted.AssertOutput("etcd.db.zst.age: stored and plain bytes match the manifest; etcd's SHA-256 trailer checks out");
        Assert.True(deep.ExitCode == 0, deep.ToString());
        deep.AssertOutput("drill: restored into a throwaway etcd: revision ");
        deep.AssertOutput("verified 1 sets: 1 good, 0 bad");
    }

    [Theory]
    [InlineData("flip-etcd", "etcd.db.zst.age", "the stored object is bad")]
    [InlineData("truncate-pki", "pki-cp1.tar.zst.age", "the stored object is bad")]
    [InlineData("missing", "manifests-cp1.tar.zst.age", "the stored object is missing")]
    [InlineData("edited-manifest", "pki-cp1.tar.zst.age", "the stored object is bad")]
    public async Task Damage_fails_naming_the_artifact(string damage, string artifact, string expected)
    {
        var cluster = $"verify-{damage}";
        var (config, sets) = await BackUpAsync(cluster);
        var prefix = $"backups/{cluster}/{sets[0]}/";
        switch (damage)
        {
            case "flip-etcd":
                await TamperAsync(prefix + artifact, b => { b[b.Length / 2] ^= 0x10; return b; });
                break;
            case "truncate-pki":
                await TamperAsync(prefix + artifact, b => b[..^50]);
                break;
            case "missing":
                Assert.Equal(0, (await _rig.Moto.AwsAsync("s3", "rm", $"s3://{LocalRig.Bucket}/{prefix}{artifact}")).ExitCode);
                break;
            default:
                await TamperAsync(prefix + "manifest.json", b =>
                {
                    var manifest = JsonNode.Parse(b)!;
                    var record = manifest["artifacts"]!.AsArray().First(a => a!["name"]!.GetValue<string>() == artifact)!;
                    record["storedSha256"] = new string('0', 64);
                    return JsonSerializer.SerializeToUtf8Bytes(manifest);
                });
                break;
        }

        foreach (var arguments in new[] { new[] { "verify", "--cluster", cluster }, ["verify", "--cluster", cluster, "--identity", _rig.AgeIdentityFile] })
        {
            var result = await CliRunner.RunAsync(config, arguments);

            Assert.Equal(1, result.ExitCode);
            result.AssertError($"error: cluster {cluster}: set {sets[0]}: artifact {artifact}: {expected}");
            result.AssertOutput($"{cluster} {sets[0]}: FAILED");
        }
    }

    [Fact]
    public async Task Set_all_verifies_every_set_and_reports_each()
    {
        var (config, sets) = await BackUpAsync("verify-all", sets: 3);
        await TamperAsync($"backups/verify-all/{sets[1]}/etcd.db.zst.age", b => b[..^1]);

        var result = await CliRunner.RunAsync(config, "verify", "--cluster", "verify-all", "--set", "all");

        Assert.Equal(1, result.ExitCode);
        result.AssertOutput($"verify-all {sets[0]}: OK");
        result.AssertOutput($"verify-all {sets[1]}: FAILED");
        result.AssertOutput($"verify-all {sets[2]}: OK");
        result.AssertOutput("verified 3 sets: 2 good, 1 bad");
    }

    [Fact]
    public async Task Deep_without_an_identity_for_an_encrypted_set_is_a_usage_error()
    {
        var (config, _) = await BackUpAsync("verify-deep-no-identity");

        var result = await CliRunner.RunAsync(config, "verify", "--cluster", "verify-deep-no-identity", "--deep");

        Assert.Equal(2, result.ExitCode);
        result.AssertError("--deep restores the snapshot, which is encrypted: pass --identity FILE");
    }
}
