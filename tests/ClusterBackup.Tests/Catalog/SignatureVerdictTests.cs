using System.Text;
using System.Text.Json.Nodes;
using ClusterBackup.Catalog;
using ClusterBackup.Rig;
using ClusterBackup.Signing;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Catalog;

/// <summary>
/// A signature this machine accepted is not verified again by list and retention over the same
/// bytes and keys; any change to the manifest, the signature or the trusted keys verifies it again.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class SignatureVerdictTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public void A_verdict_names_the_manifest_the_signature_and_the_trusted_keys()
    {
        var key = SigningKey.Load(_rig.SigningKey).Public;
        var trusted = AllowedSigners.Of(key);
        var manifest = Encoding.UTF8.GetBytes("{\"setId\":\"20261125T221408Z\"}");
        var signature = Encoding.ASCII.GetBytes("-----BEGIN SSH SIGNATURE-----");
        var verdict = SignatureVerdict.Of(manifest, signature, trusted);

        Assert.Equal(verdict, SignatureVerdict.Of(manifest, signature, AllowedSigners.Of(key)));
        Assert.Equal(2 * SignatureVerdict.Length, verdict.Length);
        Assert.NotEqual(verdict, SignatureVerdict.Of([.. manifest, (byte)' '], signature, trusted));
        Assert.NotEqual(verdict, SignatureVerdict.Of(manifest, [.. signature, (byte)'\n'], trusted));
        Assert.NotEqual(verdict, SignatureVerdict.Of(manifest, signature, AllowedSigners.Of()));
        // The fields are framed: bytes moved from the manifest to the signature are another verdict.
        Assert.NotEqual(verdict, SignatureVerdict.Of(manifest[..^1], [manifest[^1], .. signature], trusted));
    }

    [Fact]
    public async Task List_verifies_each_signature_once_and_again_when_the_manifest_or_the_trusted_keys_change()
    {
        const string Cluster = "verdicts";
        var root = Directory.CreateTempSubdirectory("cluster-backup-verdicts-").FullName;
        var config = _rig.Config(root, Cluster, "tunnel", _rig.Node1);
        var older = await CliRunner.CommittedSetAsync(config);
        var newer = await CliRunner.CommittedSetAsync(config);

        // Each backup's retention verified the set it made: list verifies none.
        (await ListAsync(config)).AssertError($"Checked 2 signatures of {Cluster}: 2 read from storage, 0 verified");
        File.Delete(TestEnvironment.SignatureVerdicts(Cluster));
        (await ListAsync(config)).AssertError($"Checked 2 signatures of {Cluster}: 2 read from storage, 2 verified");
        (await ListAsync(config)).AssertError($"Checked 2 signatures of {Cluster}: 2 read from storage, 0 verified");

        // A verdict file that cannot be read or written costs the verifications, nothing else.
        var verdicts = TestEnvironment.SignatureVerdicts(Cluster);
        var listed = (await ListAsync(config)).Output;
        File.Delete(verdicts);
        Directory.CreateDirectory(verdicts);
        try
        {
            var unusable = await ListAsync(config);
            unusable.AssertError($"Checked 2 signatures of {Cluster}: 2 read from storage, 2 verified");
            Assert.Equal(listed.Split('\n').Skip(1).Select(Cells), unusable.Output.Split('\n').Skip(1).Select(Cells));
        }
        finally
        {
            Directory.Delete(verdicts);
        }

        (await ListAsync(config)).AssertError($"Checked 2 signatures of {Cluster}: 2 read from storage, 2 verified");

        // The newer manifest edited in storage, its signature kept: verified, and refused, at each list.
        var manifest = Path.Combine(root, "backups", Cluster, newer, "manifest.json");
        await File.WriteAllTextAsync(manifest, (await File.ReadAllTextAsync(manifest)).Replace("\"keyCount\":", "\"keyCount\": ", StringComparison.Ordinal));
        foreach (var _ in new[] { 1, 2 })
        {
            var list = await ListAsync(config);
            list.AssertError($"Checked 2 signatures of {Cluster}: 2 read from storage, 1 verified");
            Assert.Matches($@"{Cluster}\s+{older}\s+.*\ssigned\n", list.Output);
            Assert.Matches($@"{Cluster}\s+{newer}\s+.*\sREFUSED", list.Output);
        }

        // Another trusted key: no verdict holds, and both are refused as signed by an untrusted key.
        var other = Path.Combine(root, "other_ed25519");
        await Tools.CheckAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-f", other);
        var allowed = Path.Combine(root, "allowed_signers");
        await File.WriteAllTextAsync(allowed, $"cluster-backup {await File.ReadAllTextAsync(other + ".pub")}");
        config["ClusterBackup"]!["Signing"] = new JsonObject { ["AllowedSignersFile"] = allowed };
        var untrusted = await ListAsync(config);
        untrusted.AssertError($"Checked 2 signatures of {Cluster}: 2 read from storage, 2 verified");
        untrusted.AssertError($"warning: cluster {Cluster}: set {older}: signed by an untrusted key");
        Assert.Matches($@"{Cluster}\s+{older}\s+.*\sREFUSED", untrusted.Output);
    }

    /// <summary>A row of list's table without its age, which moves between two lists.</summary>
    private static string Cells(string row) => string.Join(' ', row.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(c => !c.EndsWith("ago", StringComparison.Ordinal) && c != "just" && c != "now"));

    private static async Task<CliResult> ListAsync(JsonObject config)
    {
        var list = await CliRunner.RunAsync(config, "list", "--verbose");
        Assert.True(list.ExitCode == 0, list.ToString());
        return list;
    }
}
