using ClusterBackup.Signing;

namespace ClusterBackup.Catalog;

/// <summary>A set whose manifest is the one its signature covers (or an unsigned set the policy allows).</summary>
internal sealed record SignedSet(CatalogSet Set, SignatureCheck Signature)
{
    public bool Unsigned => Signature.Problem == SignatureProblem.NotSigned;
}

/// <summary>A set's signature is missing, untrusted or wrong: nothing of it is read.</summary>
internal sealed class SetRefusedException(string message) : Exception(message);
