using ClusterBackup.Catalog;
using ClusterBackup.Encryption;
using ClusterBackup.Verify;

namespace ClusterBackup.Tests.Verify;

/// <summary>The one decision of what a verification checks, for the CLI and the scheduled job alike.</summary>
public sealed class VerificationScopeTests
{
    private static readonly IReadOnlyList<AgeIdentity> Identity = [AgeIdentity.Generate()];

    private static SetManifest Manifest(bool encrypted) => new()
    {
        Cluster = "prod", SetId = "20261126T221408Z", StartedAt = DateTimeOffset.UnixEpoch, CompletedAt = DateTimeOffset.UnixEpoch, AgentVersion = "test",
        Etcd = new EtcdRecord { Node = "cp1", Mode = "tunnel", MemberId = "1", ClusterId = "2", Revision = 1, KeyCount = 1, Version = "3.5", DbSizeBytes = 1 },
        Artifacts =
        [
            new ArtifactRecord
            {
                Name = "etcd.db.zst", Kind = ArtifactKinds.EtcdSnapshot, PlainSize = 1, PlainSha256 = "0", StoredSize = 1, StoredSha256 = "0", Compression = "zstd",
                Encryption = encrypted ? new EncryptionRecord("age", ["age1x"]) : null,
            },
        ],
    };

    [Theory]
    [InlineData(true, false, false, false, false)]
    [InlineData(true, true, false, true, false)]
    [InlineData(true, true, true, true, true)]
    [InlineData(false, false, false, true, false)]
    [InlineData(false, false, true, true, true)]
    public void Content_is_decoded_when_plain_or_with_an_identity_and_the_drill_runs_only_when_deep(
        bool encrypted, bool withIdentity, bool deep, bool decodes, bool drill)
    {
        var manifest = Manifest(encrypted);

        var scope = VerificationScope.For(manifest, withIdentity ? Identity : null, deep, out var problem);

        Assert.Null(problem);
        Assert.Equal(decodes, scope.Decodes(manifest.Artifacts[0]));
        Assert.Equal(drill, scope.Drill);
    }

    [Fact]
    public void Deep_without_an_identity_for_an_encrypted_set_is_a_problem_and_plans_no_drill()
    {
        var scope = VerificationScope.For(Manifest(encrypted: true), [], deep: true, out var problem);

        Assert.Equal("--deep restores the snapshot, which is encrypted: pass --identity FILE (or set Encryption:IdentityFile)", problem);
        Assert.False(scope.Drill);
        Assert.Null(scope.Identities);
    }
}
