using System.Text;
using ClusterBackup.Rig;
using ClusterBackup.Signing;

namespace ClusterBackup.Tests.Signing;

/// <summary>The SSHSIG envelope against OpenSSH's own ssh-keygen -Y, both ways, and every way a signature is refused.</summary>
public sealed class SshSignatureTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cluster-backup-sig-").FullName;

    private string PathOf(string name) => Path.Combine(_directory, name);

    private async Task<string> KeyAsync(string name, string type = "ed25519", string passphrase = "")
    {
        var path = PathOf(name);
        await Tools.CheckAsync("ssh-keygen", "-q", "-t", type, "-N", passphrase, "-C", name, "-f", path);
        return path;
    }

    private async Task<string> AllowedAsync(params string[] keys)
    {
        var lines = new List<string>();
        foreach (var key in keys)
        {
            lines.Add($"cluster-backup namespaces=\"cluster-backup\" {(await File.ReadAllTextAsync(key + ".pub")).Trim()}");
        }

        var path = PathOf($"allowed-{Guid.NewGuid():N}");
        await File.WriteAllLinesAsync(path, lines);
        return path;
    }

    private async Task<byte[]> MessageAsync(string name, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        await File.WriteAllBytesAsync(PathOf(name), bytes);
        return bytes;
    }

    [Fact]
    public async Task A_signature_the_agent_makes_verifies_with_ssh_keygen()
    {
        var key = await KeyAsync("agent");
        var message = await MessageAsync("manifest.json", "{\"cluster\":\"prod\",\"setId\":\"20261126T221408Z\"}");
        await File.WriteAllBytesAsync(PathOf("manifest.json.sig"), SshSignature.Sign(message, SigningKey.Load(key)));

        var verify = await Tools.RunAsync("ssh-keygen",
            ["-Y", "verify", "-f", await AllowedAsync(key), "-I", "cluster-backup", "-n", "cluster-backup", "-s", PathOf("manifest.json.sig")],
            stdinFile: PathOf("manifest.json"));

        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains("Good \"cluster-backup\" signature for cluster-backup with ED25519 key", verify.Output + verify.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signature_ssh_keygen_makes_verifies_with_the_agent_naming_the_same_fingerprint()
    {
        var key = await KeyAsync("operator");
        var message = await MessageAsync("manifest.json", "{\"set\":1}\n");
        await Tools.CheckAsync("ssh-keygen", "-Y", "sign", "-f", key, "-n", "cluster-backup", PathOf("manifest.json"));
        var fingerprint = (await Tools.CheckAsync("ssh-keygen", "-l", "-E", "sha256", "-f", key + ".pub")).Split(' ')[1];

        var signature = await File.ReadAllBytesAsync(PathOf("manifest.json.sig"));
        var trusted = AllowedSigners.Load(await AllowedAsync(key));
        var check = SshSignature.Verify(message, signature, trusted);

        Assert.True(check.Valid, check.Describe());
        Assert.Equal(fingerprint, check.Signer!.Fingerprint);
        Assert.Equal(fingerprint, SigningKey.Load(key).Public.Fingerprint);
    }

    [Fact]
    public async Task A_changed_message_another_key_another_namespace_or_no_signature_is_refused_by_name()
    {
        var key = await KeyAsync("agent");
        var other = await KeyAsync("attacker");
        var trusted = AllowedSigners.Load(await AllowedAsync(key));
        var message = await MessageAsync("m", "the manifest");
        var signature = SshSignature.Sign(message, SigningKey.Load(key));
        await Tools.CheckAsync("ssh-keygen", "-Y", "sign", "-f", key, "-n", "file", PathOf("m"));

        Assert.True(SshSignature.Verify(message, signature, trusted).Valid);
        Assert.Equal("signature does not match the manifest", SshSignature.Verify(Encoding.UTF8.GetBytes("the manifesT"), signature, trusted).Describe());
        var untrusted = SshSignature.Verify(message, SshSignature.Sign(message, SigningKey.Load(other)), trusted);
        Assert.Equal($"signed by an untrusted key ({SigningKey.Load(other).Public.Fingerprint})", untrusted.Describe());
        Assert.Equal("not signed", SshSignature.Verify(message, null, trusted).Describe());
        var otherNamespace = await File.ReadAllBytesAsync(PathOf("m.sig"));
        Assert.Equal(SignatureProblem.Malformed, SshSignature.Verify(message, otherNamespace, trusted).Problem);
        Assert.Equal(SignatureProblem.Malformed, SshSignature.Verify(message, Encoding.ASCII.GetBytes("garbage"), trusted).Problem);
    }

    [Fact]
    public async Task Allowed_signers_hold_several_keys_for_rotation_and_ignore_other_principals_and_namespaces()
    {
        var old = await KeyAsync("old");
        var current = await KeyAsync("current");
        var elsewhere = await KeyAsync("elsewhere");
        var file = PathOf("allowed_signers");
        await File.WriteAllLinesAsync(file,
        [
            "# rotation: the old key stays until its sets expire",
            $"cluster-backup {(await File.ReadAllTextAsync(old + ".pub")).Trim()}",
            $"*@example.com,cluster-backup namespaces=\"file,cluster-backup\" {(await File.ReadAllTextAsync(current + ".pub")).Trim()}",
            $"alice@example.com {(await File.ReadAllTextAsync(elsewhere + ".pub")).Trim()}",
            $"cluster-backup namespaces=\"git\" {(await File.ReadAllTextAsync(elsewhere + ".pub")).Trim()}",
        ]);

        var trusted = AllowedSigners.Load(file);

        Assert.Equal([SigningKey.Load(old).Public, SigningKey.Load(current).Public], trusted.Keys);
    }

    [Fact]
    public async Task A_key_with_a_passphrase_or_of_another_type_is_refused_with_the_reason()
    {
        var locked = await KeyAsync("locked", passphrase: "secret phrase");
        var rsa = await KeyAsync("rsa", type: "rsa");

        Assert.Contains("passphrase", Assert.Throws<FormatException>(() => SigningKey.Load(locked)).Message, StringComparison.Ordinal);
        Assert.Contains("not an Ed25519 key", Assert.Throws<FormatException>(() => SigningKey.Load(rsa)).Message, StringComparison.Ordinal);
        Assert.Contains("not an OpenSSH private key", Assert.Throws<FormatException>(() => SigningKey.Load(rsa + ".pub")).Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
