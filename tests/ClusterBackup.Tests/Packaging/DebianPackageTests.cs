using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Packaging;

/// <summary>
/// packaging/build-deb, as an operator meets it: the .deb installs on this machine with no .NET,
/// its binary runs, the packaged configuration says what to fill in, the installed unit verifies
/// (its man page included), and it removes cleanly. Needs root, as CI runs.
/// </summary>
public sealed class DebianPackageTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("cluster-backup-deb-").FullName;

    [Fact]
    public async Task The_package_builds_installs_checks_and_removes()
    {
        Assert.False(Directory.Exists("/etc/cluster-backup") || File.Exists("/usr/bin/cluster-backup"),
            "cluster-backup is installed on this machine: this test installs and purges the package, so it refuses to run here");

        var build = await Tools.RunAsync(Path.Combine(Tools.RepositoryRoot(), "packaging", "build-deb"), [_out], timeout: TimeSpan.FromMinutes(10));
        Assert.True(build.ExitCode == 0, build.ToString());
        var deb = build.Output.Trim().Split('\n')[^1];
        Assert.True(File.Exists(deb), build.ToString());
        var contents = await Tools.CheckAsync("dpkg-deb", "--contents", deb);
        foreach (var path in new[]
                 {
                     "./usr/bin/cluster-backup", "./lib/systemd/system/cluster-backup.service", "./etc/cluster-backup/appsettings.json",
                     "./usr/share/cluster-backup/prometheus/cluster-backup.rules.yml", "./usr/share/cluster-backup/grafana/cluster-backup.json",
                     "./usr/share/man/man1/cluster-backup.1.gz",
                 })
        {
            Assert.Contains(path, contents, StringComparison.Ordinal);
        }

        Assert.Equal("/etc/cluster-backup/appsettings.json", (await Tools.CheckAsync("dpkg-deb", "--info", deb, "conffiles")).Trim());

        try
        {
            var install = await Tools.RunAsync("dpkg", ["-i", deb]);
            Assert.True(install.ExitCode == 0, install.ToString());

            Assert.Equal("0.1.0", (await Tools.CheckAsync("/usr/bin/cluster-backup", "--version")).Trim());
            var check = await Tools.RunAsync("/usr/bin/cluster-backup", ["config", "check"]);
            Assert.Equal(78, check.ExitCode);
            Assert.Contains("ClusterBackup:Encryption:Recipients:0: 'age1-REPLACE", check.Error, StringComparison.Ordinal);
            Assert.DoesNotContain("PrivateKeyFile", check.Error, StringComparison.Ordinal); // made at installation
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode("/etc/cluster-backup/id_ed25519"));
            Assert.DoesNotContain("Signing", check.Error, StringComparison.Ordinal); // made at installation
            Assert.Equal("cluster-backup 0600", (await Tools.CheckAsync("stat", "-c", "%U %04a", "/etc/cluster-backup/signing_ed25519")).Trim());
            var trusted = await File.ReadAllTextAsync("/etc/cluster-backup/allowed_signers");
            Assert.StartsWith("cluster-backup namespaces=\"cluster-backup\" ssh-ed25519 ", trusted, StringComparison.Ordinal);
            Assert.Contains((await File.ReadAllTextAsync("/etc/cluster-backup/signing_ed25519.pub")).Split(' ')[1], trusted, StringComparison.Ordinal);

            var verify = await Tools.RunAsync("systemd-analyze", ["verify", "/lib/systemd/system/cluster-backup.service"]);
            Assert.True(verify.ExitCode == 0 && verify.Error.Trim().Length == 0, verify.ToString());
        }
        finally
        {
            var purge = await Tools.RunAsync("dpkg", ["--purge", "cluster-backup"]);
            Assert.True(purge.ExitCode == 0, purge.ToString());
            Assert.False(File.Exists("/usr/bin/cluster-backup"));
            Assert.True(File.Exists("/etc/cluster-backup/id_ed25519"), "purge must keep the operator's SSH key");
            await Tools.RunAsync("userdel", ["cluster-backup"]);
            Directory.Delete("/etc/cluster-backup", recursive: true);
            if (Directory.Exists("/var/lib/cluster-backup"))
            {
                Directory.Delete("/var/lib/cluster-backup", recursive: true);
            }
        }
    }

    public void Dispose() => Directory.Delete(_out, recursive: true);
}
