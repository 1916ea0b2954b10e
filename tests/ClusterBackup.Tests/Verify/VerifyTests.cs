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

    [Fact]
    public async Task Deep_says_whether_the_set_holds_the_keys_its_Secrets_are_encrypted_with()
    {
        await using var cluster = await EtcdCluster.StartAsync(_rig, "vs", 1);
        var node = cluster.Members[0].Node;
        Assert.Equal(0, (await cluster.EtcdctlAsync(["put", "/registry/secrets/default/db-password", "k8s:enc:aescbc:v1:key1:ciphertext"])).ExitCode);
        Assert.Equal(0, (await cluster.EtcdctlAsync(["put", "/registry/secrets/kube-system/plain", "{\"kind\":\"Secret\"}"])).ExitCode);
        var config = cluster.Config("vs");
        var apiServer = Path.Combine(node.ManifestsDirectory, "kube-apiserver.yaml");
        var original = await File.ReadAllTextAsync(apiServer);

        async Task<CliResult> BackUpAndVerifyAsync(string? encryptionConfig, string? keyName)
        {
            if (encryptionConfig is not null)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(encryptionConfig)!);
                await File.WriteAllTextAsync(encryptionConfig, $"kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: {keyName}\n        secret: c2VjcmV0\n");
            }

            await File.WriteAllTextAsync(apiServer, original + (encryptionConfig is null ? string.Empty : $"spec:\n  containers:\n  - command:\n    - --encryption-provider-config={encryptionConfig}\n"));
            var backup = await CliRunner.RunAsync(config, "backup");
            Assert.True(backup.ExitCode == 0, backup.ToString());
            return await CliRunner.RunAsync(config, "verify", "--cluster", "vs", "--deep", "--identity", _rig.AgeIdentityFile);
        }

        var held = await BackUpAndVerifyAsync(Path.Combine(node.Root, "enc", "enc.yaml"), "key1");
        var renamed = await BackUpAndVerifyAsync(Path.Combine(node.Root, "enc", "enc.yaml"), "key2");
        var inPki = await BackUpAndVerifyAsync(Path.Combine(node.PkiDirectory, "enc.yaml"), "key1");
        File.Delete(Path.Combine(node.PkiDirectory, "enc.yaml"));
        var none = await BackUpAndVerifyAsync(null, null);

        Assert.True(held.ExitCode == 0, held.ToString());
        held.AssertOutput("Secrets encrypted at rest (1 with aescbc key key1): the set's encryption config (encryption-config-vs-cp1: enc.yaml) names every key");
        Assert.Equal(1, renamed.ExitCode);
        renamed.AssertError("Secrets encrypted at rest (1 with aescbc key key1) with aescbc key key1, but no encryption config in the set (encryption-config-vs-cp1: enc.yaml) names it: restored, they cannot be read");
        renamed.AssertOutput("verified 1 sets: 0 good, 1 bad");
        Assert.True(inPki.ExitCode == 0, inPki.ToString());
        inPki.AssertOutput("the set's encryption config (pki-vs-cp1: enc.yaml) names every key");
        Assert.Equal(1, none.ExitCode);
        none.AssertError("but the set holds no encryption config (kube-apiserver's --encryption-provider-config): restored, they cannot be read");
    }
}
