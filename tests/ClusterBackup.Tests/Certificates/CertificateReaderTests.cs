using System.Globalization;
using System.Text;
using ClusterBackup.Certificates;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Certificates;

/// <summary>What the reader finds, checked against openssl's own reading of the same files.</summary>
public sealed class CertificateReaderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cluster-backup-certs-").FullName;

    [Fact]
    public async Task A_crt_file_gives_each_certificate_of_its_chain_as_openssl_reads_it()
    {
        var ca = await CertificateAsync("ca", "kubernetes", 3650, ca: null);
        var leaf = await CertificateAsync("apiserver", "kube-apiserver", 10, ca: "ca");
        var chain = Encoding.ASCII.GetBytes(await File.ReadAllTextAsync(leaf) + await File.ReadAllTextAsync(ca));
        var problems = new List<string>();

        var found = CertificateReader.FromPem("cp1", "apiserver.crt", chain, problems);

        Assert.Empty(problems);
        Assert.Equal(2, found.Count);
        Assert.Equal(await EndDateAsync(leaf), found[0].NotAfter);
        Assert.Equal(await EndDateAsync(ca), found[1].NotAfter);
        Assert.False(found[0].IsCa);
        Assert.True(found[1].IsCa);
        Assert.Equal("CN=kube-apiserver", found[0].Subject);
        Assert.Equal("CN=kubernetes", found[0].Issuer);
        Assert.Equal((await Tools.CheckAsync("openssl", "x509", "-noout", "-serial", "-in", leaf)).Trim()["serial=".Length..], found[0].Serial);
        Assert.All(found, c => Assert.Equal("apiserver.crt", c.Name));
    }

    [Fact]
    public async Task A_kubeconfig_gives_its_embedded_certificates_and_nothing_of_its_key_and_a_file_reference_gives_nothing()
    {
        var pki = await KubeadmPki.CreateAsync(Path.Combine(_root, "pki"));
        var kubeconfigs = Directory.CreateDirectory(Path.Combine(_root, "etc")).FullName;
        await pki.WriteKubeconfigsAsync(kubeconfigs, "cp1");
        var problems = new List<string>();

        var scheduler = CertificateReader.FromKubeconfig("cp1", "scheduler.conf", await File.ReadAllBytesAsync(Path.Combine(kubeconfigs, "scheduler.conf")), problems);
        var kubelet = CertificateReader.FromKubeconfig("cp1", "kubelet.conf", await File.ReadAllBytesAsync(Path.Combine(kubeconfigs, "kubelet.conf")), problems);

        Assert.Empty(problems);
        var ca = Assert.Single(scheduler, c => c.Field == CertificateRecord.CertificateAuthorityData);
        var client = Assert.Single(scheduler, c => c.Field == CertificateRecord.ClientCertificateData);
        Assert.Equal(2, scheduler.Count);
        Assert.Equal("scheduler.conf", client.Name);
        Assert.Equal("scheduler.conf/certificate-authority", ca.Name);
        Assert.True(ca.IsCa);
        Assert.Equal(await EndDateAsync(Path.Combine(pki.Root, "ca.crt")), ca.NotAfter);
        Assert.InRange(client.NotAfter - DateTimeOffset.UtcNow, TimeSpan.FromDays(KubeadmPki.ExpiringKubeconfigDays - 1), TimeSpan.FromDays(KubeadmPki.ExpiringKubeconfigDays));
        var kubeletCa = Assert.Single(kubelet);
        Assert.Equal(CertificateRecord.CertificateAuthorityData, kubeletCa.Field);
    }

    [Theory]
    [InlineData("0xFA488324DBDB6765AA5C6BC6526E9BE6AA7BB9")]
    [InlineData("0x0A488324DBDB6765AA5C6BC6526E9BE6AA7BB9")]
    [InlineData("0x7F")]
    [InlineData("0x80")]
    [InlineData("0x0100")]
    [InlineData("1")]
    public async Task A_serial_reads_as_openssl_prints_it_whatever_its_first_byte(string serial)
    {
        var key = Path.Combine(_root, "serial.key");
        var crt = Path.Combine(_root, "serial.crt");
        await Tools.CheckAsync("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-set_serial", serial, "-keyout", key, "-out", crt, "-subj", "/CN=serial");
        var problems = new List<string>();

        var found = Assert.Single(CertificateReader.FromPem("cp1", "serial.crt", await File.ReadAllBytesAsync(crt), problems));

        Assert.Empty(problems);
        Assert.Equal((await Tools.CheckAsync("openssl", "x509", "-noout", "-serial", "-in", crt)).Trim()["serial=".Length..], found.Serial);
    }

    [Fact]
    public void What_is_not_a_certificate_is_reported_not_thrown()
    {
        var problems = new List<string>();
        var found = CertificateReader.FromPem("cp1", "broken.crt", Encoding.ASCII.GetBytes("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), problems);

        Assert.Empty(found);
        Assert.StartsWith("cp1: broken.crt: not a readable certificate", Assert.Single(problems), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("apiserver.crt", true, false)]
    [InlineData("etcd/ca.crt", true, false)]
    [InlineData("ca.key", false, false)]
    [InlineData("sa.pub", false, false)]
    [InlineData("admin.conf", false, true)]
    [InlineData("sub/admin.conf", false, false)]
    public void Only_certificates_and_top_level_kubeconfigs_are_read(string entry, bool pki, bool kubeconfig)
    {
        Assert.Equal(pki, CertificateReader.IsPkiCertificate(entry));
        Assert.Equal(kubeconfig, CertificateReader.IsKubeconfig(entry));
    }

    [Fact]
    public void Attention_and_residual_time_follow_the_warning_period()
    {
        var now = new DateTimeOffset(2026, 11, 27, 0, 0, 0, TimeSpan.Zero);
        CertificateRecord At(double days) => new()
        {
            Node = "cp1", File = "x.crt", Subject = "CN=x", Issuer = "CN=ca", Serial = "01", NotAfter = now.AddDays(days), IsCa = false,
        };

        Assert.False(CertificateExpiry.NeedsAttention(At(31), now, 30));
        Assert.True(CertificateExpiry.NeedsAttention(At(29.5), now, 30));
        Assert.True(CertificateExpiry.NeedsAttention(At(-1), now, 30));
        Assert.Equal("364d", CertificateExpiry.Residual(now.AddDays(364.5), now));
        Assert.Equal("5h", CertificateExpiry.Residual(now.AddHours(5.5), now));
        Assert.Equal("expired", CertificateExpiry.Residual(now.AddSeconds(-1), now));
        Assert.Equal([2.0, 10, 400], CertificateExpiry.Sorted([At(400), At(2), At(10)]).Select(c => (c.NotAfter - now).TotalDays));
    }

    private async Task<string> CertificateAsync(string name, string commonName, int days, string? ca)
    {
        var key = Path.Combine(_root, name + ".key");
        var crt = Path.Combine(_root, name + ".crt");
        if (ca is null)
        {
            await Tools.CheckAsync("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days.ToString(CultureInfo.InvariantCulture), "-keyout", key, "-out", crt, "-subj", $"/CN={commonName}");
        }
        else
        {
            var csr = Path.Combine(_root, name + ".csr");
            await Tools.CheckAsync("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", $"/CN={commonName}");
            await Tools.CheckAsync("openssl", "x509", "-req", "-in", csr, "-CA", Path.Combine(_root, ca + ".crt"), "-CAkey", Path.Combine(_root, ca + ".key"),
                "-CAcreateserial", "-days", days.ToString(CultureInfo.InvariantCulture), "-out", crt);
        }

        return crt;
    }

    /// <summary>What <c>openssl x509 -enddate</c> says.</summary>
    internal static async Task<DateTimeOffset> EndDateAsync(string file)
    {
        var text = (await Tools.CheckAsync("openssl", "x509", "-noout", "-enddate", "-in", file)).Trim()["notAfter=".Length..];
        return DateTimeOffset.ParseExact(System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " "), "MMM d HH:mm:ss yyyy 'GMT'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
