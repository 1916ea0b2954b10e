using System.Buffers.Binary;
using System.Security.Cryptography;
using ClusterBackup.Signing;

namespace ClusterBackup.Catalog;

/// <summary>
/// What a signature check that accepted a set leaves on this machine, so that the next check of the
/// same bytes against the same trusted keys (a list, a retention) need not verify it again: the
/// SHA-256 of the manifest's bytes, the signature's bytes and the trusted keys. Only list and
/// retention use verdicts; verify, download and restore always verify the signature itself.
/// </summary>
internal static class SignatureVerdict
{
    public const int Length = 32;

    private static readonly byte[] Label = "cluster-backup signature verdict 1\n"u8.ToArray();

    /// <summary>The verdict that the signature over these manifest bytes was accepted under these trusted keys, in lowercase hex.</summary>
    public static string Of(ReadOnlySpan<byte> manifest, ReadOnlySpan<byte> signature, AllowedSigners trusted)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Label);
        Append(hash, manifest);
        Append(hash, signature);
        foreach (var key in trusted.Keys.Select(k => k.Blob).OrderBy(Convert.ToHexString, StringComparer.Ordinal))
        {
            Append(hash, key);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void Append(IncrementalHash hash, ReadOnlySpan<byte> bytes)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, bytes.Length);
        hash.AppendData(length);
        hash.AppendData(bytes);
    }
}
