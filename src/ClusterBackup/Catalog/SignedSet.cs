using ClusterBackup.Signing;

namespace ClusterBackup.Catalog;

/// <summary>A set whose manifest is the one its signature covers (or an unsigned set the policy allows).</summary>
internal sealed record SignedSet(CatalogSet Set, SignatureCheck Signature)
{
    public bool Unsigned => Signature.Problem == SignatureProblem.NotSigned;
}

/// <summary>A set's signature is missing, untrusted or wrong: nothing of it is read.</summary>
/// <param name="reason">Cluster, set and what is wrong with its signature, with what to do.</param>
/// <param name="problem">What is wrong with the signature.</param>
internal sealed class SetRefusedException(string reason, SignatureProblem problem) : Exception(reason + "; nothing was decrypted or restored")
{
    public string Reason { get; } = reason;

    public SignatureProblem Problem { get; } = problem;
}
