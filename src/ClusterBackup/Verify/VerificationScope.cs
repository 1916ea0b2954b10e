using ClusterBackup.Catalog;
using ClusterBackup.Encryption;

namespace ClusterBackup.Verify;

/// <summary>
/// What a verification of a set checks, decided here and only here for <c>verify</c>, the scheduled
/// verification and <see cref="SetVerifier"/>: every artifact's stored size and SHA-256 always; its
/// decrypted and decompressed content (and etcd's trailer) when it is plain or an identity is given;
/// the restore drill when deep, which needs the snapshot decoded.
/// </summary>
internal sealed record VerificationScope
{
    private VerificationScope(IReadOnlyList<AgeIdentity>? identities, bool drill)
    {
        Identities = identities is { Count: > 0 } ? identities : null;
        Drill = drill;
    }

    public IReadOnlyList<AgeIdentity>? Identities { get; }

    public bool Drill { get; }

    public bool Decodes(ArtifactRecord artifact) => artifact.Encryption is null || Identities is not null;

    /// <summary>The scope for a set; <paramref name="problem"/> is set (and no drill planned) when deep was asked of a set that cannot be decoded.</summary>
    public static VerificationScope For(SetManifest manifest, IReadOnlyList<AgeIdentity>? identities, bool deep, out string? problem)
    {
        var scope = new VerificationScope(identities, drill: false);
        var snapshot = manifest.Artifacts.FirstOrDefault(a => a.Kind == ArtifactKinds.EtcdSnapshot);
        problem = deep && snapshot is not null && !scope.Decodes(snapshot)
            ? "--deep restores the snapshot, which is encrypted: pass --identity FILE (or set Encryption:IdentityFile)"
            : null;
        return deep && problem is null ? new VerificationScope(identities, drill: true) : scope;
    }
}
