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
        Assert.DoesNotContain("does not hold together", backup.Error, StringComparison.Ordinal); // openssl's PKCS#8 keys match their certificates

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
        Assert.Equal(0, await daemon.ValueAsync($"cluster_backup_pki_mismatches{{cluster=\"{cluster}\"}}"));
        Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));
        Directory.Delete(work, recursive: true);
    }

    [Fact]
    public async Task A_PKI_that_does_not_hold_together_is_backed_up_and_named_by_the_backup_certs_and_the_metric()
    {
        const string cluster = "pki-mismatch";
        var config = _rig.Config("moto", cluster, "tunnel", _rig.Node1);
        var work = Directory.CreateTempSubdirectory("cluster-backup-pki-mismatch-").FullName;
        try
        {
            // A copy of the node's PKI and kubeconfigs, broken as a half-done renewal or CA rotation leaves them.
            var pki = Path.Combine(work, "pki");
            var kubeconfigs = Directory.CreateDirectory(Path.Combine(work, "kubernetes")).FullName;
            await Tools.CheckAsync("cp", "-a", _rig.Node1.PkiDirectory + "/.", pki);
            await Tools.CheckAsync("cp", "-a", _rig.Node1.KubeconfigDirectory + "/.", kubeconfigs);
            await Tools.CheckAsync("openssl", "genrsa", "-out", Path.Combine(pki, "etcd", "server.key"), "2048");
            var otherCa = Path.Combine(work, "other-ca");
            Directory.CreateDirectory(otherCa);
            await Tools.CheckAsync("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=etcd-ca",
                "-keyout", Path.Combine(otherCa, "ca.key"), "-out", Path.Combine(otherCa, "ca.crt"));
            var (csr, resigned) = (Path.Combine(otherCa, "client.csr"), Path.Combine(otherCa, "client.crt"));
            await Tools.CheckAsync("openssl", "req", "-new", "-key", Path.Combine(pki, "apiserver-etcd-client.key"), "-subj", "/CN=kube-apiserver-etcd-client", "-out", csr);
            await Tools.CheckAsync("openssl", "x509", "-req", "-in", csr, "-out", resigned,
                "-CA", Path.Combine(otherCa, "ca.crt"), "-CAkey", Path.Combine(otherCa, "ca.key"), "-CAcreateserial", "-CAserial", Path.Combine(otherCa, "ca.srl"), "-days", "30");
            File.Copy(resigned, Path.Combine(pki, "apiserver-etcd-client.crt"), overwrite: true);
            var admin = Path.Combine(kubeconfigs, "admin.conf");
            var (newClusterCa, newClusterCaKey) = (Path.Combine(otherCa, "kubernetes.crt"), Path.Combine(otherCa, "kubernetes.key")); // a cluster CA made again
            await Tools.CheckAsync("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=kubernetes", "-keyout", newClusterCaKey, "-out", newClusterCa);
            await File.WriteAllTextAsync(admin, System.Text.RegularExpressions.Regex.Replace(
                await File.ReadAllTextAsync(admin), "certificate-authority-data: \\S+", $"certificate-authority-data: {Convert.ToBase64String(await File.ReadAllBytesAsync(newClusterCa))}"));
            var node = (System.Text.Json.Nodes.JsonObject)config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]![0]!;
            node["Paths"]!["Pki"] = pki;
            node["Paths"]!["Kubeconfigs"] = kubeconfigs;

            var backup = await CliRunner.RunAsync(config, "backup");

            // The set is kept (it is what the node holds), and each file is named.
            Assert.True(backup.ExitCode == 0, backup.ToString());
            backup.AssertError($"{cluster}: the PKI of cp1 does not hold together: etcd/server.key does not match etcd/server.crt");
            backup.AssertError("the PKI of cp1 does not hold together: apiserver-etcd-client.crt is not signed by etcd/ca.crt, the CA its issuer names (CN=etcd-ca)");
            backup.AssertError("the PKI of cp1 does not hold together: admin.conf holds certificate-authority-data other than ca.crt");
            Assert.DoesNotContain("BEGIN", backup.Error, StringComparison.Ordinal);

            var certs = await CliRunner.RunAsync(config, "certs", "--cluster", cluster);
            Assert.Equal(1, certs.ExitCode);
            certs.AssertError($"warning: cluster {cluster}: node cp1: etcd/server.key does not match etcd/server.crt (set ");
            certs.AssertError($"warning: cluster {cluster}: node cp1: admin.conf holds certificate-authority-data other than ca.crt (set ");
            certs.AssertError("warning: 3 file(s) of the PKI do not hold together");

            config["ClusterBackup"]!["Clusters"]![0]!["Schedule"] = "0 0 0 1 1 ? 2099";
            await using (var daemon = await DaemonProcess.StartAsync(config))
            {
                var series = $"cluster_backup_pki_mismatches{{cluster=\"{cluster}\"}}";
                await daemon.WaitUntilAsync(async () => await daemon.ValueAsync(series) is > 0, "the PKI mismatches seeded from storage", TimeSpan.FromSeconds(60));
                Assert.Equal(3, await daemon.ValueAsync(series));
                Assert.Equal(0, await daemon.TerminateAsync(TimeSpan.FromSeconds(60)));
            }

            // Once the node's files are whole again, the next set says so.
            node["Paths"]!["Pki"] = _rig.Node1.PkiDirectory;
            node["Paths"]!["Kubeconfigs"] = _rig.Node1.KubeconfigDirectory;
            var next = await CliRunner.RunAsync(config, "backup");
            Assert.True(next.ExitCode == 0, next.ToString());
            Assert.DoesNotContain("does not hold together", next.Error, StringComparison.Ordinal);
            var after = await CliRunner.RunAsync(config, "certs", "--cluster", cluster);
            Assert.DoesNotContain("do not hold together", after.Error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
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
