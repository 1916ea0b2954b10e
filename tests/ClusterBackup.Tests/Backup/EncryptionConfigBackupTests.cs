using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Backup;

/// <summary>
/// kube-apiserver's EncryptionConfiguration (its --encryption-provider-config): kept in the set
/// beside the snapshot whose Secrets it encrypted, read back with age, zstd and tar.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class EncryptionConfigBackupTests(RigFixture fixture) : IDisposable
{
    private const string EncryptionConfiguration = """
        apiVersion: apiserver.config.k8s.io/v1
        kind: EncryptionConfiguration
        resources:
          - resources: [secrets]
            providers:
              - aescbc:
                  keys:
                    - name: key1
                      secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Cg==
              - identity: {}
        """;

    private readonly LocalRig _rig = fixture.Rig;
    private readonly string _work = Directory.CreateTempSubdirectory("cluster-backup-encryption-config-").FullName;

    [Fact]
    public async Task The_file_kube_apiserver_names_is_kept_in_the_set_with_its_mode_and_restores_with_standard_tools()
    {
        const string cluster = "enc-config";
        var encryptionConfig = await WriteEncryptionConfigAsync(Path.Combine(_work, "enc dir"));
        var config = await ConfigAsync(cluster, encryptionConfig);

        var backup = await CliRunner.RunAsync(config, "backup");

        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.DoesNotContain("key1", backup.Error + backup.Output, StringComparison.Ordinal);
        var key = Assert.Single(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"), k => k.EndsWith("/encryption-config-cp1.tar.zst.age", StringComparison.Ordinal));
        var encrypted = Path.Combine(_work, "e.age");
        var fetched = await _rig.Moto.AwsAsync("s3", "cp", "--quiet", $"s3://{LocalRig.Bucket}/{key}", encrypted);
        Assert.True(fetched.ExitCode == 0, fetched.ToString());
        var extracted = Directory.CreateDirectory(Path.Combine(_work, "x")).FullName;
        var untar = await Tools.RunAsync("bash", ["-c", $"age -d -i '{_rig.AgeIdentityFile}' '{encrypted}' | zstd -d | tar -xpf - -C '{extracted}'"]);
        Assert.True(untar.ExitCode == 0, untar.ToString());
        var restored = Assert.Single(Directory.GetFiles(extracted));
        Assert.Equal("enc.yaml", Path.GetFileName(restored));
        Assert.Equal(EncryptionConfiguration, await File.ReadAllTextAsync(restored));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(restored));

        var artifact = await ArtifactAsync(config, cluster);
        Assert.Equal(encryptionConfig, artifact.GetProperty("path").GetString());
        Assert.Equal(["enc.yaml"], artifact.GetProperty("files").EnumerateArray().Select(f => f.GetString()));
        var verify = await CliRunner.RunAsync(config, "verify", "--cluster", cluster, "--identity", _rig.AgeIdentityFile);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        verify.AssertOutput("encryption-config-cp1.tar.zst.age: stored and plain bytes match the manifest");
    }

    [Fact]
    public async Task A_file_missing_on_the_node_is_said_and_recorded_and_one_in_the_PKI_dir_is_not_archived_twice()
    {
        var missing = Path.Combine(_work, "gone", "enc.yaml");
        var config = await ConfigAsync("enc-missing", missing);

        var backup = await CliRunner.RunAsync(config, "backup");

        Assert.True(backup.ExitCode == 0, backup.ToString());
        backup.AssertError($"enc-missing: kube-apiserver.yaml of cp1 names --encryption-provider-config={missing}, which is not a file on the node");
        var artifact = await ArtifactAsync(config, "enc-missing");
        Assert.Equal(0, artifact.GetProperty("files").GetArrayLength());

        var inPki = Path.Combine(_rig.Node1.PkiDirectory, "enc.yaml");
        var config2 = await ConfigAsync("enc-in-pki", inPki);
        var second = await CliRunner.RunAsync(config2, "backup");
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.DoesNotContain("encryption-provider-config", second.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, "backups/enc-in-pki/"), k => k.Contains("encryption-config", StringComparison.Ordinal));
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private static async Task<string> WriteEncryptionConfigAsync(string directory)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "enc.yaml");
        await File.WriteAllTextAsync(path, EncryptionConfiguration);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    /// <summary>The node's static-pod manifests, copied, with a kube-apiserver.yaml that names the encryption config.</summary>
    private async Task<JsonObject> ConfigAsync(string cluster, string encryptionConfig)
    {
        var manifests = Directory.CreateDirectory(Path.Combine(_work, $"manifests-{cluster}")).FullName;
        await Tools.CheckAsync("cp", "-a", _rig.Node1.ManifestsDirectory + "/.", manifests);
        await File.WriteAllTextAsync(Path.Combine(manifests, "kube-apiserver.yaml"), string.Join('\n',
            "kind: Pod",
            "spec:",
            "  containers:",
            "  - command:",
            "    - kube-apiserver",
            $"    - --encryption-provider-config={encryptionConfig}",
            string.Empty));
        var config = _rig.Config("moto", cluster, "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]![0]!["Paths"]!["Manifests"] = manifests;
        return config;
    }

    private static async Task<JsonElement> ArtifactAsync(JsonObject config, string cluster)
    {
        var listed = JsonSerializer.Deserialize<JsonElement>((await CliRunner.RunAsync(config, "list", "--json", "--cluster", cluster)).Output);
        return listed[0].GetProperty("artifacts").EnumerateArray().Single(a => a.GetProperty("kind").GetString() == "encryption-config");
    }
}
