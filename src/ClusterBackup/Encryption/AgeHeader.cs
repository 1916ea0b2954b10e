using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Math.EC.Rfc7748;

namespace ClusterBackup.Encryption;

/// <summary>One recipient stanza: <c>-> TYPE ARGS…</c> and its body.</summary>
internal sealed record AgeStanza(string Type, IReadOnlyList<string> Arguments, byte[] Body);

/// <summary>Writes and reads age headers: X25519 recipient stanzas and the header MAC.</summary>
internal static class AgeHeader
{
    private const int MaxLineLength = 4096;

    /// <summary>The complete header (version line, one X25519 stanza per recipient, MAC line).</summary>
    public static byte[] Write(ReadOnlySpan<byte> fileKey, IReadOnlyList<AgeRecipient> recipients)
    {
        var header = new StringBuilder(AgeFormat.VersionLine).Append('\n');
        foreach (var recipient in recipients)
        {
            var ephemeral = RandomNumberGenerator.GetBytes(X25519.ScalarSize);
            var share = new byte[X25519.PointSize];
            X25519.ScalarMultBase(ephemeral, 0, share, 0);
            var shared = new byte[X25519.PointSize];
            X25519.ScalarMult(ephemeral, 0, recipient.PublicKey, 0, shared, 0);
            CryptographicOperations.ZeroMemory(ephemeral);

            var body = new byte[AgeFormat.FileKeySize + AgeFormat.TagSize];
            using (var aead = new ChaCha20Poly1305(AgeFormat.X25519WrapKey(shared, share, recipient.PublicKey)))
            {
                aead.Encrypt(new byte[12], fileKey, body.AsSpan(0, AgeFormat.FileKeySize), body.AsSpan(AgeFormat.FileKeySize));
            }

            header.Append("-> ").Append(AgeFormat.X25519StanzaType).Append(' ').Append(AgeFormat.Base64(share)).Append('\n');
            AppendBody(header, AgeFormat.Base64(body));
        }

        header.Append("---");
        var macInput = Encoding.ASCII.GetBytes(header.ToString());
        var mac = HMACSHA256.HashData(AgeFormat.HeaderMacKey(fileKey), macInput);
        header.Append(' ').Append(AgeFormat.Base64(mac)).Append('\n');
        return Encoding.ASCII.GetBytes(header.ToString());
    }

    private static void AppendBody(StringBuilder header, string encoded)
    {
        // Full 64-column lines, then a final shorter line, which is empty when the body fills its last line.
        for (var i = 0; i <= encoded.Length; i += AgeFormat.ColumnsPerLine)
        {
            header.Append(encoded.AsSpan(i, Math.Min(AgeFormat.ColumnsPerLine, encoded.Length - i))).Append('\n');
        }
    }

    /// <summary>
    /// Reads the header from <paramref name="reader"/>, finds the stanza one of the identities
    /// opens, verifies the MAC, and returns the file key.
    /// </summary>
    public static async Task<byte[]> ReadFileKeyAsync(AgeByteReader reader, IReadOnlyList<AgeIdentity> identities, CancellationToken cancellationToken)
    {
        var macInput = new List<byte>();
        var version = await ReadLineAsync(reader, macInput, cancellationToken);
        if (version != AgeFormat.VersionLine)
        {
            throw HeaderFailure(version.StartsWith("age-encryption.org/", StringComparison.Ordinal)
                ? $"unsupported version '{version}'"
                : "not an age file (no 'age-encryption.org/v1' line)");
        }

        var stanzas = new List<AgeStanza>();
        string line;
        while (true)
        {
            line = await ReadLineAsync(reader, macInput, cancellationToken);
            if (line.StartsWith("---", StringComparison.Ordinal))
            {
                break;
            }

            stanzas.Add(await ReadStanzaAsync(reader, line, macInput, cancellationToken));
        }

        if (!line.StartsWith("--- ", StringComparison.Ordinal) || !AgeFormat.TryDecodeBase64(line[4..], out var mac) || mac.Length != 32)
        {
            throw HeaderFailure("malformed MAC line");
        }

        if (stanzas.Count == 0)
        {
            throw HeaderFailure("no recipient stanza");
        }

        if (stanzas.Any(s => s.Type == "scrypt") && stanzas.Count > 1)
        {
            throw HeaderFailure("an scrypt stanza must be the only one");
        }

        var fileKey = Unwrap(stanzas, identities)
            ?? throw new AgeException(AgeFailure.NoMatch,
                $"none of the given identities ({string.Join(", ", identities.Select(i => i.Recipient))}) is a recipient of this file");

        // The MAC covers the header up to and including "---" (without the space and the MAC).
        var covered = macInput.Count - (line.Length - 3) - 1;
        var expected = HMACSHA256.HashData(AgeFormat.HeaderMacKey(fileKey), macInput.GetRange(0, covered).ToArray());
        if (!CryptographicOperations.FixedTimeEquals(expected, mac))
        {
            throw new AgeException(AgeFailure.Hmac, "the header MAC does not verify: the header was altered or damaged");
        }

        return fileKey;
    }

    private static byte[]? Unwrap(IReadOnlyList<AgeStanza> stanzas, IReadOnlyList<AgeIdentity> identities)
    {
        foreach (var stanza in stanzas.Where(s => s.Type == AgeFormat.X25519StanzaType))
        {
            if (stanza.Arguments.Count != 1 || !AgeFormat.TryDecodeBase64(stanza.Arguments[0], out var share) || share.Length != X25519.PointSize)
            {
                throw HeaderFailure("malformed X25519 stanza share");
            }

            if (stanza.Body.Length != AgeFormat.FileKeySize + AgeFormat.TagSize)
            {
                throw HeaderFailure("malformed X25519 stanza body");
            }

            foreach (var identity in identities)
            {
                var shared = new byte[X25519.PointSize];
                if (!identity.TryAgree(share, shared))
                {
                    throw HeaderFailure("X25519 share is a low-order point");
                }

                var fileKey = new byte[AgeFormat.FileKeySize];
                using var aead = new ChaCha20Poly1305(AgeFormat.X25519WrapKey(shared, share, identity.Recipient.PublicKey));
                try
                {
                    aead.Decrypt(new byte[12], stanza.Body.AsSpan(0, AgeFormat.FileKeySize), stanza.Body.AsSpan(AgeFormat.FileKeySize), fileKey);
                    return fileKey;
                }
                catch (AuthenticationTagMismatchException)
                {
                    // not this identity's stanza
                }
            }
        }

        return null;
    }

    private static async Task<AgeStanza> ReadStanzaAsync(AgeByteReader reader, string line, List<byte> macInput, CancellationToken cancellationToken)
    {
        if (!line.StartsWith("-> ", StringComparison.Ordinal))
        {
            throw HeaderFailure("a stanza must start with '-> '");
        }

        var parts = line[3..].Split(' ');
        if (parts.Any(p => p.Length == 0 || p.Any(c => c is < (char)33 or > (char)126)))
        {
            throw HeaderFailure("malformed stanza arguments");
        }

        var body = new StringBuilder();
        while (true)
        {
            var bodyLine = await ReadLineAsync(reader, macInput, cancellationToken);
            if (bodyLine.Length > AgeFormat.ColumnsPerLine)
            {
                throw HeaderFailure("a stanza body line is longer than 64 columns");
            }

            body.Append(bodyLine);
            if (bodyLine.Length < AgeFormat.ColumnsPerLine)
            {
                break;
            }
        }

        if (!AgeFormat.TryDecodeBase64(body.ToString(), out var decoded))
        {
            throw HeaderFailure("a stanza body is not canonical base64");
        }

        return new AgeStanza(parts[0], parts[1..], decoded);
    }

    private static async Task<string> ReadLineAsync(AgeByteReader reader, List<byte> macInput, CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        while (true)
        {
            var b = await reader.ReadByteAsync(cancellationToken);
            if (b < 0)
            {
                throw HeaderFailure("the header ends early");
            }

            macInput.Add((byte)b);
            if (b == '\n')
            {
                break;
            }

            if (b is < 32 or > 126 || line.Count > MaxLineLength)
            {
                throw HeaderFailure("invalid character or overlong line in the header");
            }

            line.Add((byte)b);
        }

        return Encoding.ASCII.GetString([.. line]);
    }

    private static AgeException HeaderFailure(string detail) => new(AgeFailure.Header, $"the age header is malformed: {detail}");
}
