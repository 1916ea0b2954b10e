using System.Security.Cryptography;
using Org.BouncyCastle.Math.EC.Rfc7748;

namespace ClusterBackup.Encryption;

/// <summary>An age X25519 recipient: the public key backups are encrypted to (<c>age1…</c>).</summary>
internal sealed class AgeRecipient
{
    private const string Hrp = "age";

    private AgeRecipient(byte[] publicKey) => PublicKey = publicKey;

    public byte[] PublicKey { get; }

    public static bool TryParse(string text, out AgeRecipient recipient)
    {
        recipient = null!;
        if (!Bech32.TryDecode(text.Trim(), out var hrp, out var key) || hrp != Hrp || key.Length != X25519.PointSize
            || !text.Trim().StartsWith(Hrp + "1", StringComparison.Ordinal))
        {
            return false;
        }

        recipient = new AgeRecipient(key);
        return true;
    }

    public static AgeRecipient FromPublicKey(byte[] publicKey) => new(publicKey);

    public override string ToString() => Bech32.Encode(Hrp, PublicKey);

    public override bool Equals(object? obj) => obj is AgeRecipient other && other.PublicKey.AsSpan().SequenceEqual(PublicKey);

    public override int GetHashCode() => BitConverter.ToInt32(PublicKey, 0);
}

/// <summary>An age X25519 identity: the secret key that decrypts (<c>AGE-SECRET-KEY-1…</c>).</summary>
internal sealed class AgeIdentity
{
    private const string Hrp = "age-secret-key-";

    private readonly byte[] _secret;

    private AgeIdentity(byte[] secret)
    {
        _secret = secret;
        var publicKey = new byte[X25519.PointSize];
        X25519.ScalarMultBase(secret, 0, publicKey, 0);
        Recipient = AgeRecipient.FromPublicKey(publicKey);
    }

    public AgeRecipient Recipient { get; }

    public static AgeIdentity Generate() => new(RandomNumberGenerator.GetBytes(X25519.ScalarSize));

    public static bool TryParse(string text, out AgeIdentity identity)
    {
        identity = null!;
        var trimmed = text.Trim();
        if (!trimmed.StartsWith("AGE-SECRET-KEY-1", StringComparison.Ordinal)
            || !Bech32.TryDecode(trimmed, out var hrp, out var secret) || hrp != Hrp || secret.Length != X25519.ScalarSize)
        {
            return false;
        }

        identity = new AgeIdentity(secret);
        return true;
    }

    /// <summary>An identity file as age-keygen writes it: one key a line, '#' comments, blank lines.</summary>
    public static IReadOnlyList<AgeIdentity> ParseFile(string content, string source)
    {
        var identities = new List<AgeIdentity>();
        var lineNumber = 0;
        foreach (var line in content.Split('\n'))
        {
            lineNumber++;
            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith('#'))
            {
                continue;
            }

            if (!TryParse(trimmed, out var identity))
            {
                throw new FormatException($"{source}:{lineNumber}: not an age X25519 identity (AGE-SECRET-KEY-1…)");
            }

            identities.Add(identity);
        }

        return identities.Count > 0 ? identities : throw new FormatException($"{source}: holds no age identity (AGE-SECRET-KEY-1…)");
    }

    /// <summary>Reads an identity file; throws <see cref="FormatException"/> or an I/O exception with the path in its message.</summary>
    public static IReadOnlyList<AgeIdentity> LoadFile(string path)
    {
        try
        {
            return ParseFile(File.ReadAllText(path), path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"cannot read the age identity file {path}: {ex.Message}", ex);
        }
    }

    public override string ToString() => Bech32.Encode(Hrp, _secret).ToUpperInvariant();

    /// <summary>X25519(secret, share); false for a low-order share (an all-zero result).</summary>
    public bool TryAgree(ReadOnlySpan<byte> share, Span<byte> shared)
    {
        var result = new byte[X25519.PointSize];
        X25519.ScalarMult(_secret, 0, share.ToArray(), 0, result, 0);
        result.CopyTo(shared);
        return !result.All(b => b == 0);
    }
}
