using System.Globalization;
using System.Text.Json;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Certificates;

/// <summary>
/// The rig's kubeadm-like PKI and kubeconfigs (scheduler.conf's client certificate expires in 10
/// days): what the set holds, read back with age, zstd and tar; what certs says, against openssl;
/// and what the daemon exports.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class CertificateBackupTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public async Task The_set_holds_the_kubeconfigs_and_certs_reports_every_certificate_as_openssl_does_flagging_the_one_that_expires_soon()
    {
        const string cluster = "certs";
        var config = _rig.Config("moto", cluster, "tunnel", _rig.Node1);
        var backup = await CliRunner.RunAsync(config, "backup");
        Assert.True(backup.ExitCode == 0, backup.ToString());
        backup.AssertError("Certificate scheduler.conf of certs on cp1 expires");
        Assert.DoesNotContain("Certificate admin.conf ", backup.Error, StringComparison.Ordinal);

        // The kubeconfigs artifact restores with standard tools to the same files and modes.
        var key = Assert.Single(await _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, $"backups/{cluster}/"), k => k.EndsWith("/kubeconfigs-cp1.tar.zst.age", StringComparison.Ordinal));
        var work = Directory.CreateTempSubdirectory("cluster-backup-kubeconfigs-").FullName;
        var encrypted = Path.Combine(work, "k.age");
        var fetched = await _rig.Moto.AwsAsync("s3", "cp", "--quiet", $"s3://{LocalRig.Bucket}/{key}", encrypted);
        Assert.True(fetched.ExitCode == 0, fetched.ToString());
        var extracted = Directory.CreateDirectory(Path.Combine(work, "x")).FullName;
        var untar = await Tools.RunAsync("bash", ["-c", $"age -d -i '{_rig.AgeIdentityFile}' '{encrypted}' | zstd -d | tar -xpf - -C '{extracted}'"]);
        Assert.True(untar.ExitCode == 0, untar.ToString());
        var expected = Directory.GetFiles(_rig.Node1.KubeconfigDirectory, "*.conf").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["admin.conf", "controller-manager.conf", "kubelet.conf", "scheduler.conf", "super-admin.conf"], expected);
        Assert.Equal(expected, Directory.GetFiles(extracted).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (var file in expected)
        {
            var original = Path.Combine(_rig.Node1.KubeconfigDirectory, file!);
            var restored = Path.Combine(extracted, file!);
            Assert.Equal(await File.ReadAllBytesAsync(original), await File.ReadAllBytesAsync(restored));
            Assert.Equal(File.GetUnixFileMode(original), File.GetUnixFileMode(restored));
        }

        // certs: every certificate, with openssl's notAfter; the 10-day one flagged; exit 1.
        var certs = await CliRunner.RunAsync(config, "certs", "--cluster", cluster, "--json");
        Assert.Equal(1, certs.ExitCode);
        certs.AssertError("warning: 1 certificate(s) expire within 30 days");
        var rows = JsonSerializer.Deserialize<JsonElement>(certs.Output).EnumerateArray().ToList();
        var crtFiles = Directory.GetFiles(_rig.Node1.PkiDirectory, "*.crt", SearchOption.AllDirectories);
        Assert.Equal(crtFiles.Length + (2 * 4) + 1, rows.Count); // each .crt; client and CA data of four kubeconfigs; kubelet.conf's CA data
        foreach (var crt in crtFiles)
        {
            var name = Path.GetRelativePath(_rig.Node1.PkiDirectory, crt);
            var row = Assert.Single(rows, r => r.GetProperty("certificate").GetString() == name);
            Assert.Equal(await CertificateReaderTests.EndDateAsync(crt), row.GetProperty("notAfter").GetDateTimeOffset());
            Assert.Equal("cp1", row.GetProperty("node").GetString());
        }

        var expiring = Assert.Single(rows, r => r.GetProperty("status").GetString() != "ok");
        Assert.Equal("scheduler.conf", expiring.GetProperty("certificate").GetString());
        Assert.Equal("EXPIRING", expiring.GetProperty("status").GetString());
        Assert.False(expiring.GetProperty("isCa").GetBoolean());
        Assert.Equal("scheduler.conf", rows[0].GetProperty("certificate").GetString()); // soonest first
        Assert.True(rows.Single(r => r.GetProperty("certificate").GetString() == "ca.crt").GetProperty("isCa").GetBoolean());

        var table = await CliRunner.RunAsync(config, "certs");
        Assert.Equal(1, table.ExitCode);
        table.AssertOutput("CLUSTER  CERTIFICATE");
        Assert.Matches(@"certs\s+scheduler\.conf\s+cp1\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+9d\s+no\s+EXPIRING", table.Output);
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster);
        list.AssertOutput("scheduler.conf@cp1 (9d)");

        // The daemon exports each certificate's expiry, seeded from storage at start-up.
        config["ClusterBackup"]!["Clusters"]![0]!["Schedule"] = "0 0 0 1 1 ? 2099";
        await using var daemon = await DaemonProcess.StartAsync(config);
        var series = $"cluster_backup_certificate_expiry_timestamp_seconds{{cluster=\"{cluster}\",node=\"cp1\",certificate=\"scheduler.conf\"}}";
        await daemon.WaitUntilAsync(async () => await daemon.ValueAsync(series) is not null, "the certificate series", TimeSpan.FromSeconds(60));
        Assert.Equal(expiring.GetProperty("notAfter").GetDateTimeOffset().ToUnixTimeSeconds(), await daemon.ValueAsync(series));
        var apiserverEtcd = $"cluster_backup_certificate_expiry_timestamp_seconds{{cluster=\"{cluster}\",node=\"cp1\",certificate=\"apiserver-etcd-client.crt\"}}";
        Assert.Equal((await CertificateReaderTests.EndDateAsync(Path.Combine(_rig.Node1.PkiDirectory, "apiserver-etcd-client.crt"))).ToUnixTimeSeconds(), await daemon.ValueAsync(apiserverEtcd));
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));
        Directory.Delete(work, recursive: true);
    }

    [Fact]
    public async Task A_node_without_kubeconfigs_is_recorded_as_such_and_the_backup_succeeds()
    {
        const string cluster = "no-kubeconfigs";
        var config = _rig.Config("moto", cluster, "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]![0]!["Paths"]!["Kubeconfigs"] = Path.Combine(_rig.Root, "no-such-dir");
        var backup = await CliRunner.RunAsync(config, "backup");
        Assert.True(backup.ExitCode == 0, backup.ToString());
        backup.AssertError("node cp1 has no kubeconfigs");

        var listed = JsonSerializer.Deserialize<JsonElement>((await CliRunner.RunAsync(config, "list", "--json", "--cluster", cluster)).Output);
        var artifact = listed[0].GetProperty("artifacts").EnumerateArray().Single(a => a.GetProperty("kind").GetString() == "kubeconfigs");
        Assert.Equal(0, artifact.GetProperty("files").GetArrayLength());
        Assert.DoesNotContain(listed[0].GetProperty("certificates").EnumerateArray(), c => c.GetProperty("file").GetString()!.EndsWith(".conf", StringComparison.Ordinal));
    }
}
