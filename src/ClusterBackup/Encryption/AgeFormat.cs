using System.Security.Cryptography;
using System.Text;

namespace ClusterBackup.Encryption;

/// <summary>Constants and primitives of the age v1 format (C2SP age specification).</summary>
internal static class AgeFormat
{
    public const string VersionLine = "age-encryption.org/v1";
    public const string X25519StanzaType = "X25519";
    public const int FileKeySize = 16;
    public const int NonceSize = 16;
    public const int ChunkSize = 64 * 1024;
    public const int TagSize = 16;
    public const int ColumnsPerLine = 64;
    public const string X25519Info = "age-encryption.org/v1/X25519";

    public static byte[] HeaderMacKey(ReadOnlySpan<byte> fileKey) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, fileKey.ToArray(), 32, [], Encoding.ASCII.GetBytes("header"));

    public static byte[] PayloadKey(ReadOnlySpan<byte> fileKey, ReadOnlySpan<byte> nonce) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, fileKey.ToArray(), 32, nonce.ToArray(), Encoding.ASCII.GetBytes("payload"));

    public static byte[] X25519WrapKey(ReadOnlySpan<byte> shared, ReadOnlySpan<byte> share, ReadOnlySpan<byte> recipient) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, shared.ToArray(), 32, [.. share, .. recipient], Encoding.ASCII.GetBytes(X25519Info));

    /// <summary>The STREAM nonce: an 11-byte big-endian chunk counter and a last-chunk flag.</summary>
    public static void ChunkNonce(ulong counter, bool last, Span<byte> nonce)
    {
        nonce.Clear();
        for (var i = 10; i >= 3; i--)
        {
            nonce[i] = (byte)counter;
            counter >>= 8;
        }

        nonce[11] = last ? (byte)1 : (byte)0;
    }

    /// <summary>Standard base64 without padding, as age writes it.</summary>
    public static string Base64(ReadOnlySpan<byte> data) => Convert.ToBase64String(data).TrimEnd('=');

    /// <summary>Decodes unpadded base64, refusing padding and non-canonical encodings.</summary>
    public static bool TryDecodeBase64(string text, out byte[] data)
    {
        data = [];
        if (text.Contains('=', StringComparison.Ordinal) || text.Length % 4 == 1)
        {
            return false;
        }

        try
        {
            data = Convert.FromBase64String(text + new string('=', (4 - (text.Length % 4)) % 4));
        }
        catch (FormatException)
        {
            return false;
        }

        return Base64(data) == text;
    }
}
