using System.Security.Cryptography;
using System.Text;
using ClusterBackup.Sources.Ssh;

namespace ClusterBackup.Tests.Sources.Ssh;

public sealed class KnownHostsTests
{
    private static readonly byte[] KeyA = Blob("ssh-ed25519", 1);
    private static readonly byte[] KeyB = Blob("ssh-ed25519", 2);

    private static byte[] Blob(string type, byte seed)
    {
        var name = Encoding.ASCII.GetBytes(type);
        return [0, 0, 0, (byte)name.Length, .. name, 0, 0, 0, 32, .. Enumerable.Repeat(seed, 32)];
    }

    private static string Line(string hosts, byte[] key) => $"{hosts} ssh-ed25519 {Convert.ToBase64String(key)}";

    [Theory]
    [InlineData("10.0.0.1", 22, "10.0.0.1")]
    [InlineData("10.0.0.1", 2222, "[10.0.0.1]:2222")]
    [InlineData("cp1.example", 22, "cp0.example,cp1.example")]
    [InlineData("cp1.example", 22, "*.example")]
    [InlineData("cp1.example", 22, "cp?.EXAMPLE")]
    public void A_matching_key_is_trusted(string host, int port, string pattern)
    {
        var hosts = KnownHosts.Parse("# comment\n\n" + Line(pattern, KeyA));

        Assert.Equal(HostKeyVerdict.Trusted, hosts.Check(host, port, "ssh-ed25519", KeyA));
    }

    [Fact]
    public void A_different_key_of_the_same_type_is_changed_and_an_unlisted_host_unknown()
    {
        var hosts = KnownHosts.Parse(Line("[10.0.0.1]:2222", KeyA));

        Assert.Equal(HostKeyVerdict.Changed, hosts.Check("10.0.0.1", 2222, "ssh-ed25519", KeyB));
        Assert.Equal(HostKeyVerdict.Unknown, hosts.Check("10.0.0.1", 22, "ssh-ed25519", KeyA));
        Assert.Equal(HostKeyVerdict.Unknown, hosts.Check("10.0.0.2", 2222, "ssh-ed25519", KeyA));
    }

    [Fact]
    public void Hashed_host_names_match_as_OpenSSH_writes_them()
    {
        var salt = RandomNumberGenerator.GetBytes(20);
        var hash = HMACSHA1.HashData(salt, Encoding.UTF8.GetBytes("[10.0.0.1]:2222"));
        var hosts = KnownHosts.Parse(Line($"|1|{Convert.ToBase64String(salt)}|{Convert.ToBase64String(hash)}", KeyA));

        Assert.Equal(HostKeyVerdict.Trusted, hosts.Check("10.0.0.1", 2222, "ssh-ed25519", KeyA));
        Assert.Equal(HostKeyVerdict.Unknown, hosts.Check("10.0.0.1", 22, "ssh-ed25519", KeyA));
    }

    [Fact]
    public void A_negated_pattern_excludes_a_host()
    {
        var hosts = KnownHosts.Parse(Line("*.example,!cp9.example", KeyA));

        Assert.Equal(HostKeyVerdict.Unknown, hosts.Check("cp9.example", 22, "ssh-ed25519", KeyA));
    }

    [Fact]
    public void A_revoked_key_is_refused_even_when_also_listed()
    {
        var hosts = KnownHosts.Parse($"@revoked * ssh-ed25519 {Convert.ToBase64String(KeyA)}\n{Line("10.0.0.1", KeyA)}");

        Assert.Equal(HostKeyVerdict.Revoked, hosts.Check("10.0.0.1", 22, "ssh-ed25519", KeyA));
    }

    [Fact]
    public void Key_types_for_a_host_guide_negotiation()
    {
        var hosts = KnownHosts.Parse(Line("10.0.0.1", KeyA) + "\n10.0.0.1 ecdsa-sha2-nistp256 AAAA\n10.0.0.2 ssh-rsa AAAA");

        Assert.Equal(["ecdsa-sha2-nistp256", "ssh-ed25519"], hosts.KeyTypesFor("10.0.0.1", 22).Order(StringComparer.Ordinal));
    }
}
