using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Configuration;
using ClusterBackup.Metrics;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterBackup.Tests.Signing;

/// <summary>
/// Every set is signed, and a forged one is refused before anything is decrypted or restored: the
/// attack is carried out as someone with write access to the bucket would.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class SignedSetTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    private (JsonObject Config, string Root) Filesystem(string cluster)
    {
        var root = Directory.CreateTempSubdirectory("cluster-backup-signed-").FullName;
        var config = _rig.Config(root, cluster, "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Encryption"]!["IdentityFile"] = _rig.AgeIdentityFile;
        return (config, root);
    }

    private static async Task<string> BackupAsync(JsonObject config)
    {
        var result = await CliRunner.RunAsync(config, "backup");
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Output.Split("committed set ")[1][..16];
    }

    /// <summary>The attacker's archive: a CA of their own, as a tar, compressed and encrypted to the set's public recipient.</summary>
    private async Task<(string Plain, string Stored)> ForgedPkiAsync(string directory)
    {
        var pki = Directory.CreateDirectory(Path.Combine(directory, "attacker-pki")).FullName;
        await File.WriteAllTextAsync(Path.Combine(pki, "ca.crt"), "-----BEGIN CERTIFICATE-----\nthe attacker's CA\n-----END CERTIFICATE-----\n");
        var tar = Path.Combine(directory, "forged.tar");
        await Tools.CheckAsync("tar", "-cf", tar, "-C", pki, ".");
        await Tools.CheckAsync("zstd", "-q", "-f", tar, "-o", tar + ".zst");
        await Tools.CheckAsync("age", "-r", _rig.AgeRecipient, "-o", tar + ".zst.age", tar + ".zst");
        return (tar, tar + ".zst.age");
    }

    private static string Sha256(string file) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));

    [Fact]
    public async Task A_set_is_signed_so_that_OpenSSH_alone_verifies_it_and_list_and_verify_name_the_signer()
    {
        var (config, root) = Filesystem("signed");
        var id = await BackupAsync(config);
        var set = Path.Combine(root, "backups", "signed", id);
        var fingerprint = (await Tools.CheckAsync("ssh-keygen", "-l", "-E", "sha256", "-f", _rig.SigningKey + ".pub")).Split(' ')[1];

        var openssh = await Tools.RunAsync("ssh-keygen",
            ["-Y", "verify", "-f", _rig.AllowedSigners, "-I", "cluster-backup", "-n", "cluster-backup", "-s", Path.Combine(set, "manifest.json.sig")],
            stdinFile: Path.Combine(set, "manifest.json"));
        var list = await CliRunner.RunAsync(config, "list", "--json");
        var verify = await CliRunner.RunAsync(config, "verify", "--identity", _rig.AgeIdentityFile);

        Assert.True(openssh.ExitCode == 0, openssh.ToString());
        Assert.Equal(fingerprint, JsonSerializer.Deserialize<JsonElement>(list.Output)[0].GetProperty("signedBy").GetString());
        Assert.True(verify.ExitCode == 0, verify.ToString());
        verify.AssertOutput($"  signature: signed by {fingerprint}");
    }

    [Fact]
    public async Task A_replaced_pki_archive_with_edited_hashes_or_a_signature_by_another_key_is_refused_by_verify_download_and_restore()
    {
        var (config, root) = Filesystem("forged");
        var genuine = await BackupAsync(config);
        var id = await BackupAsync(config);
        var set = Path.Combine(root, "backups", "forged", id);
        var work = Directory.CreateTempSubdirectory("cluster-backup-attacker-").FullName;
        var (plain, stored) = await ForgedPkiAsync(work);

        // Replace the archive and edit the four hash fields (and sizes) of its record; keep the old signature.
        var manifestPath = Path.Combine(set, "manifest.json");
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(manifestPath))!;
        var record = manifest["artifacts"]!.AsArray().Single(a => (string?)a!["kind"] == "pki")!;
        File.Copy(stored, Path.Combine(set, (string)record["name"]!), overwrite: true);
        record["plainSize"] = new FileInfo(plain).Length;
        record["plainSha256"] = Sha256(plain);
        record["storedSize"] = new FileInfo(stored).Length;
        record["storedSha256"] = Sha256(stored);
        await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString());

        await AssertRefusedAsync(config, id, genuine, "signature does not match the manifest");

        // Re-signed by the attacker's own key.
        var attacker = Path.Combine(work, "attacker_ed25519");
        await Tools.CheckAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-f", attacker);
        File.Delete(manifestPath + ".sig");
        await Tools.CheckAsync("ssh-keygen", "-Y", "sign", "-f", attacker, "-n", "cluster-backup", manifestPath);
        var attackerFingerprint = (await Tools.CheckAsync("ssh-keygen", "-l", "-E", "sha256", "-f", attacker + ".pub")).Split(' ')[1];

        await AssertRefusedAsync(config, id, genuine, $"signed by an untrusted key ({attackerFingerprint})");
    }

    private async Task AssertRefusedAsync(JsonObject config, string id, string genuine, string reason)
    {
        // list marks the forged set, names it on standard error, and still shows both.
        var list = await CliRunner.RunAsync(config, "list");
        Assert.True(list.ExitCode == 0, list.ToString());
        list.AssertOutput("SIGNATURE");
        Assert.Matches($@"forged\s+{genuine}\s+.*\ssigned\n", list.Output);
        Assert.Matches($@"forged\s+{id}\s+.*\sREFUSED", list.Output);
        list.AssertError($"warning: cluster forged: set {id}: {reason}");
        Assert.DoesNotContain(genuine, list.Error);
        var json = await CliRunner.RunAsync(config, "list", "--json");
        Assert.Equal([genuine, id], JsonSerializer.Deserialize<JsonElement>(json.Output).EnumerateArray().Select(s => s.GetProperty("setId").GetString()));
        json.AssertError($"warning: cluster forged: set {id}: {reason}");

        var verify = await CliRunner.RunAsync(config, "verify", "--set", id, "--identity", _rig.AgeIdentityFile);
        Assert.Equal(1, verify.ExitCode);
        verify.AssertOutput($"forged {id}: FAILED");
        verify.AssertError($"error: cluster forged: set {id}: {reason}");
        verify.AssertError($"; the newest set a trusted key signed is {genuine} (--set {genuine})");

        var target = Path.Combine(Path.GetTempPath(), $"cluster-backup-forged-{Guid.NewGuid():N}");
        var download = await CliRunner.RunAsync(config, "download", "--cluster", "forged", "--set", id, "--to", target, "--identity", _rig.AgeIdentityFile);
        Assert.Equal(1, download.ExitCode);
        download.AssertError($"error: cluster forged: set {id}: {reason}");
        Assert.False(Directory.Exists(target), "download must leave nothing behind");

        // 'latest' is the forged set: the refusal names the genuine one to use instead.
        var restore = await CliRunner.RunAsync(config, "restore", "--cluster", "forged", "--set", "latest", "--pki", "--dry-run", "--identity", _rig.AgeIdentityFile);
        Assert.Equal(1, restore.ExitCode);
        restore.AssertError($"error: cluster forged: set {id}: {reason}");
        restore.AssertError($"; the newest set a trusted key signed is {genuine} (--set {genuine}); nothing was decrypted or restored");
        var instead = await CliRunner.RunAsync(config, "download", "--cluster", "forged", "--set", genuine, "--to", target, "--identity", _rig.AgeIdentityFile);
        Assert.True(instead.ExitCode == 0, instead.ToString());
        Directory.Delete(target, recursive: true);
    }

    [Fact]
    public async Task An_unsigned_set_is_refused_unless_allow_unsigned_reads_it_with_a_warning()
    {
        var (config, root) = Filesystem("unsigned");
        var id = await BackupAsync(config);
        File.Delete(Path.Combine(root, "backups", "unsigned", id, "manifest.json.sig"));
        var target = Path.Combine(root, "download");

        var refused = await CliRunner.RunAsync(config, "verify", "--identity", _rig.AgeIdentityFile);
        var read = await CliRunner.RunAsync(config, "verify", "--identity", _rig.AgeIdentityFile, "--allow-unsigned");
        var download = await CliRunner.RunAsync(config, "download", "--cluster", "unsigned", "--to", target, "--identity", _rig.AgeIdentityFile, "--allow-unsigned");

        Assert.Equal(1, refused.ExitCode);
        refused.AssertError($"error: cluster unsigned: set {id}: not signed; a set written before signing existed is read with --allow-unsigned");
        Assert.True(read.ExitCode == 0, read.ToString());
        read.AssertError($"warning: cluster unsigned: set {id} is not signed");
        Assert.True(download.ExitCode == 0, download.ToString());
        Assert.True(File.Exists(Path.Combine(target, "etcd-snapshot.db")));

        var list = await CliRunner.RunAsync(config, "list");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Matches($@"unsigned\s+{id}\s+.*\sunsigned\n?$", list.Output);
        list.AssertError("warning: cluster unsigned: 1 set(s) not signed (written before signing existed): verify, download and restore read them only with --allow-unsigned");
    }

    [Fact]
    public async Task A_configuration_with_neither_a_signing_key_nor_Disabled_is_refused_by_backup_and_run_and_Disabled_writes_unsigned_sets()
    {
        var (config, root) = Filesystem("nokey");
        config["ClusterBackup"]!.AsObject().Remove("Signing");
        config["ClusterBackup"]!["Clusters"]![0]!["Schedule"] = "0 0 1 1 *";

        var backup = await CliRunner.RunAsync(config, "backup");
        var run = await CliRunner.RunAsync(config, "run");
        var list = await CliRunner.RunAsync(config, "list");

        Assert.Equal(78, backup.ExitCode);
        backup.AssertError("ClusterBackup:Signing:KeyFile: no signing key is configured");
        Assert.Equal(78, run.ExitCode);
        run.AssertError("ClusterBackup:Signing:KeyFile: no signing key is configured");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.DoesNotContain(Directory.GetDirectories(root, "*", SearchOption.AllDirectories), d => d.Contains("nokey", StringComparison.Ordinal));

        config["ClusterBackup"]!["Signing"] = new JsonObject { ["Disabled"] = true };
        var id = await BackupAsync(config);
        var verify = await CliRunner.RunAsync(config, "verify", "--identity", _rig.AgeIdentityFile);

        Assert.False(File.Exists(Path.Combine(root, "backups", "nokey", id, "manifest.json.sig")));
        Assert.True(verify.ExitCode == 0, verify.ToString());
        verify.AssertError("is not signed");
        var unsignedList = await CliRunner.RunAsync(config, "list");
        Assert.Matches($@"nokey\s+{id}\s+.*\sunsigned\n?$", unsignedList.Output);
        Assert.DoesNotContain("not signed", unsignedList.Error); // with signing disabled, nothing to warn of
        Assert.DoesNotContain("no key is trusted", unsignedList.Error);
    }

    /// <summary>
    /// Someone who can write to storage edits the newest set's manifest, keeping its signature: one
    /// key more, and every certificate's notAfter five years out (scheduler.conf's expires in 10 days).
    /// </summary>
    private static async Task ForgeAsync(string root, string cluster, string id)
    {
        var manifestPath = Path.Combine(root, "backups", cluster, id, "manifest.json");
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(manifestPath))!;
        manifest["etcd"]!["keyCount"] = (long)manifest["etcd"]!["keyCount"]! + 1;
        foreach (var certificate in manifest["certificates"]!.AsArray())
        {
            certificate!["notAfter"] = DateTimeOffset.UtcNow.AddYears(5).ToString("O");
        }

        await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString());
    }

    /// <summary>Two backups of the cluster, the newer one then forged (<see cref="ForgeAsync"/>).</summary>
    private async Task<(JsonObject Config, string Root, string Genuine, string Forged)> GenuineThenForgedAsync(string cluster)
    {
        var (config, root) = Filesystem(cluster);
        var genuine = await BackupAsync(config);
        var forged = await BackupAsync(config);
        await ForgeAsync(root, cluster, forged);
        return (config, root, genuine, forged);
    }

    [Fact]
    public async Task A_forged_newest_set_is_refused_by_certs_which_reports_from_the_newest_signed_set_and_names_the_forgery()
    {
        var (config, _, genuine, forged) = await GenuineThenForgedAsync("forged-certs");

        var certs = await CliRunner.RunAsync(config, "certs", "--cluster", "forged-certs", "--json");
        var table = await CliRunner.RunAsync(config, "certs", "--cluster", "forged-certs", "--allow-unsigned");

        Assert.Equal(1, certs.ExitCode);
        certs.AssertError($"error: cluster forged-certs: set {forged}: signature does not match the manifest; the set may have been forged: use another set; its certificates are not reported");
        certs.AssertError($"cluster forged-certs: certificates from set {genuine}, the newest one a trusted key signed");
        certs.AssertError("warning: 1 certificate(s) expire within 30 days");
        var rows = JsonSerializer.Deserialize<JsonElement>(certs.Output).EnumerateArray().ToList();
        Assert.All(rows, r => Assert.Equal(genuine, r.GetProperty("setId").GetString()));
        Assert.Equal("EXPIRING", rows.Single(r => r.GetProperty("certificate").GetString() == "scheduler.conf").GetProperty("status").GetString());

        // --allow-unsigned admits sets without a signature, never one whose signature is wrong.
        Assert.Equal(1, table.ExitCode);
        table.AssertError($"error: cluster forged-certs: set {forged}: signature does not match the manifest");
        Assert.Matches(@"forged-certs\s+scheduler\.conf\s+cp1\s+\S+ \S+ UTC\s+9d\s+no\s+EXPIRING", table.Output);
    }

    [Fact]
    public async Task The_daemon_shows_the_newest_signed_set_and_the_scheduled_verification_of_a_forged_newest_set_fails()
    {
        var (config, root, genuine, forged) = await GenuineThenForgedAsync("forged-daemon");
        config["ClusterBackup"]!["Verify"] = new JsonObject { ["Deep"] = false };
        var genuineManifest = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(root, "backups", "forged-daemon", genuine, "manifest.json")))!;
        var scheduler = genuineManifest["certificates"]!.AsArray().Single(c => (string?)c!["file"] == "scheduler.conf" && (string?)c["field"] == "client-certificate-data")!;
        config["ClusterBackup"]!["Clusters"]![0]!["Schedule"] = "0 0 1 1 *";
        config["ClusterBackup"]!["Clusters"]![0]!["VerifySchedule"] = "0 0 1 1 *";

        await using var daemon = await DaemonProcess.StartAsync(config);
        await daemon.WaitUntilAsync(
            () => Task.FromResult(daemon.Log.Contains("its newest set is refused", StringComparison.Ordinal)), "the refused verification logged", TimeSpan.FromSeconds(60));

        Assert.Equal(0, await daemon.ValueAsync("cluster_backup_last_verify_success_timestamp_seconds{cluster=\"forged-daemon\"}"));
        Assert.Contains("signature does not match the manifest", daemon.Log, StringComparison.Ordinal);
        Assert.Contains($"the newest set a trusted key signed is {genuine} (--set {genuine})", daemon.Log, StringComparison.Ordinal);

        // Freshness, revision and certificates come from the genuine set; the forged one is logged.
        Assert.Equal(
            genuineManifest["startedAt"]!.GetValue<DateTimeOffset>().ToUnixTimeSeconds(),
            await daemon.ValueAsync("cluster_backup_last_success_timestamp_seconds{cluster=\"forged-daemon\"}"));
        Assert.Equal((long)genuineManifest["etcd"]!["revision"]!, await daemon.ValueAsync("cluster_backup_etcd_revision{cluster=\"forged-daemon\"}"));
        Assert.Equal(
            scheduler["notAfter"]!.GetValue<DateTimeOffset>().ToUnixTimeSeconds(),
            await daemon.ValueAsync("cluster_backup_certificate_expiry_timestamp_seconds{cluster=\"forged-daemon\",node=\"cp1\",certificate=\"scheduler.conf\"}"));
        Assert.Single(daemon.Log.Split('\n'), line => line.Contains("is refused, its manifest not shown in the metrics", StringComparison.Ordinal)
                                                     && line.Contains($"\"SetId\":\"{forged}\"", StringComparison.Ordinal));
        Assert.DoesNotContain("missed a scheduled backup", daemon.Log, StringComparison.Ordinal);
        Assert.Equal(1, await daemon.ValueAsync("cluster_backup_refused_sets{cluster=\"forged-daemon\"}")); // ClusterBackupForgedSet fires
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task The_daemon_reads_a_sets_signature_once_for_the_same_manifest_bytes_and_again_when_they_change()
    {
        var (config, root, genuine, forged) = await GenuineThenForgedAsync("forged-seeder");
        var settings = ConfigurationLoader.Load(await CliRunner.WriteConfigAsync(config));
        var cluster = settings.Clusters[0];
        await using var services = new ServiceCollection()
            .AddSingleton(typeof(Microsoft.Extensions.Logging.ILogger<>), typeof(NullLogger<>))
            .AddAgent(settings)
            .BuildServiceProvider();
        var seeder = services.GetRequiredService<MetricsSeeder>();

        Assert.Equal(genuine, (await seeder.SeedAsync(cluster))?.SetId);

        // The genuine set's signature is not read again while its manifest is the same...
        File.Delete(Path.Combine(root, "backups", "forged-seeder", genuine, "manifest.json.sig"));
        Assert.Equal(genuine, (await seeder.SeedAsync(cluster, refresh: true))?.SetId);

        // ...and is when the manifest changes: without its signature, it is refused too.
        await ForgeAsync(root, "forged-seeder", genuine);
        Assert.Null(await seeder.SeedAsync(cluster, refresh: true));
    }

    [Fact]
    public async Task Sets_forged_in_storage_cost_no_signed_set_its_place_at_retention()
    {
        var (config, root) = Filesystem("forged-prune");
        string[] genuine = [await BackupAsync(config), await BackupAsync(config)];
        var clusterDir = Path.Combine(root, "backups", "forged-prune");

        // Someone who can write to storage copies a set under two later ids, each manifest edited to name its set.
        string[] forged = ["20990101T000000Z", "20990102T000000Z"];
        foreach (var id in forged)
        {
            var copy = Directory.CreateDirectory(Path.Combine(clusterDir, id)).FullName;
            foreach (var file in Directory.GetFiles(Path.Combine(clusterDir, genuine[1])))
            {
                File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            }

            var manifest = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(copy, "manifest.json")))!;
            manifest["setId"] = id;
            manifest["startedAt"] = DateTimeOffset.ParseExact(id, "yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture).ToString("O");
            await File.WriteAllTextAsync(Path.Combine(copy, "manifest.json"), manifest.ToJsonString());
        }

        // The forged sets take both places of "last 2" among all sets; the genuine ones keep theirs among the signed.
        config["ClusterBackup"]!["Clusters"]![0]!["Retention"] = new JsonObject { ["KeepLast"] = 2 };
        var keepTwo = await CliRunner.RunAsync(config, "prune", "--dry-run");
        Assert.True(keepTwo.ExitCode == 0, keepTwo.ToString());
        foreach (var id in genuine)
        {
            Assert.Matches($@"(?m)^{id} .* keep\s+last set \(among the sets whose signature is accepted\)$", keepTwo.Output);
        }

        Assert.Matches($@"(?m)^{forged[0]} .* keep\s+last set, its signature is refused: it counts for the rules, but costs no signed set its place$", keepTwo.Output);
        keepTwo.AssertOutput("dry run: would remove 0 sets");

        config["ClusterBackup"]!["Clusters"]![0]!["Retention"] = new JsonObject { ["KeepLast"] = 1 };
        var prune = await CliRunner.RunAsync(config, "prune");
        var verify = await CliRunner.RunAsync(config, "verify", "--set", genuine[1], "--identity", _rig.AgeIdentityFile);

        Assert.True(prune.ExitCode == 0, prune.ToString());
        Assert.Matches($@"(?m)^{genuine[0]} .* remove$", prune.Output);
        Assert.Matches($@"(?m)^{forged[0]} .* remove$", prune.Output);
        prune.AssertOutput("removed 2 sets");
        Assert.Equal([forged[1], genuine[1]], Directory.GetDirectories(clusterDir).Select(Path.GetFileName).OrderDescending(StringComparer.Ordinal));
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }
}
