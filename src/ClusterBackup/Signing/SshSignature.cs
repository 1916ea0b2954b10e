using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto.Signers;

namespace ClusterBackup.Signing;

/// <summary>Why a set's signature is refused: a closed set, each with its message.</summary>
internal enum SignatureProblem
{
    NotSigned,
    Malformed,
    Untrusted,
    Mismatch,
}

/// <summary>The outcome of checking a signature: the signer when it holds, otherwise the problem.</summary>
internal sealed record SignatureCheck(SignerKey? Signer, SignatureProblem? Problem, string? Detail = null)
{
    public bool Valid => Problem is null;

    public string Describe() => Problem switch
    {
        null => $"signed by {Signer!.Fingerprint}",
        SignatureProblem.NotSigned => "not signed",
        SignatureProblem.Malformed => $"the signature cannot be read: {Detail}",
        SignatureProblem.Untrusted => $"signed by an untrusted key ({Signer!.Fingerprint})",
        SignatureProblem.Mismatch => "signature does not match the manifest",
        _ => throw new ArgumentOutOfRangeException(nameof(Problem), Problem, null),
    };
}

/// <summary>
/// OpenSSH's SSH signature (PROTOCOL.sshsig) over a message, namespace <c>cluster-backup</c>,
/// SHA-512, Ed25519: what <c>ssh-keygen -Y sign</c> writes and <c>ssh-keygen -Y verify</c> checks.
/// The Ed25519 arithmetic and the key encodings are BouncyCastle's; only the envelope is here.
/// </summary>
internal static class SshSignature
{
    public const string Namespace = "cluster-backup";
    private const string Magic = "SSHSIG";
    private const uint Version = 1;
    private const string Begin = "-----BEGIN SSH SIGNATURE-----";
    private const string End = "-----END SSH SIGNATURE-----";

    /// <summary>The armored signature, as <c>ssh-keygen -Y sign</c> writes it.</summary>
    public static byte[] Sign(ReadOnlySpan<byte> message, SigningKey key)
    {
        var signer = new Ed25519Signer();
        signer.Init(true, key.Key);
        var signed = SignedData("sha512", SHA512.HashData(message));
        signer.BlockUpdate(signed, 0, signed.Length);
        var signature = new SshWriter().String(SignerKey.KeyType).String(signer.GenerateSignature()).ToArray();
        var blob = new SshWriter()
            .Raw(Encoding.ASCII.GetBytes(Magic)).UInt32(Version)
            .String(key.Public.Blob).String(Namespace).String(string.Empty).String("sha512").String(signature)
            .ToArray();
        var text = new StringBuilder().Append(Begin).Append('\n');
        var base64 = Convert.ToBase64String(blob);
        for (var i = 0; i < base64.Length; i += 70)
        {
            text.Append(base64.AsSpan(i, Math.Min(70, base64.Length - i))).Append('\n');
        }

        return Encoding.ASCII.GetBytes(text.Append(End).Append('\n').ToString());
    }

    /// <summary>Checks an armored signature (null: none) over the message against the trusted keys.</summary>
    public static SignatureCheck Verify(ReadOnlySpan<byte> message, byte[]? armored, AllowedSigners trusted)
    {
        if (armored is null)
        {
            return new SignatureCheck(null, SignatureProblem.NotSigned);
        }

        SignerKey signer;
        string hash;
        byte[] signature;
        try
        {
            var reader = new SshReader(Unarmor(armored));
            if (Encoding.ASCII.GetString(reader.Raw(Magic.Length)) != Magic || reader.UInt32() != Version)
            {
                throw new FormatException("not an SSHSIG v1 signature");
            }

            signer = SignerKey.FromBlob(reader.String());
            var ns = reader.Text();
            reader.String(); // reserved
            hash = reader.Text();
            var wrapped = new SshReader(reader.String());
            if (!reader.AtEnd)
            {
                throw new FormatException("trailing data");
            }

            if (ns != Namespace)
            {
                throw new FormatException($"made for the namespace '{ns}', not '{Namespace}'");
            }

            if (hash is not ("sha512" or "sha256"))
            {
                throw new FormatException($"unknown hash '{hash}'");
            }

            if (wrapped.Text() != SignerKey.KeyType)
            {
                throw new FormatException($"not an {SignerKey.KeyType} signature");
            }

            signature = wrapped.String();
        }
        catch (FormatException ex)
        {
            return new SignatureCheck(null, SignatureProblem.Malformed, ex.Message);
        }

        if (!trusted.Trusts(signer))
        {
            return new SignatureCheck(signer, SignatureProblem.Untrusted);
        }

        var verifier = new Ed25519Signer();
        verifier.Init(false, signer.Key);
        var signed = SignedData(hash, hash == "sha512" ? SHA512.HashData(message) : SHA256.HashData(message));
        verifier.BlockUpdate(signed, 0, signed.Length);
        return verifier.VerifySignature(signature)
            ? new SignatureCheck(signer, null)
            : new SignatureCheck(signer, SignatureProblem.Mismatch);
    }

    private static byte[] SignedData(string hash, byte[] digest) =>
        new SshWriter().Raw(Encoding.ASCII.GetBytes(Magic)).String(Namespace).String(string.Empty).String(hash).String(digest).ToArray();

    private static byte[] Unarmor(byte[] armored)
    {
        var text = Encoding.ASCII.GetString(armored);
        var begin = text.IndexOf(Begin, StringComparison.Ordinal);
        var end = text.IndexOf(End, StringComparison.Ordinal);
        if (begin < 0 || end < begin)
        {
            throw new FormatException("not an armored SSH signature");
        }

        try
        {
            return Convert.FromBase64String(text[(begin + Begin.Length)..end]);
        }
        catch (FormatException)
        {
            throw new FormatException("its body is not base64");
        }
    }
}
