using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Utilities;

namespace ClusterBackup.Signing;

/// <summary>An Ed25519 public key as OpenSSH encodes it (the key blob), named by its OpenSSH fingerprint.</summary>
internal sealed class SignerKey : IEquatable<SignerKey>
{
    public const string KeyType = "ssh-ed25519";

    private SignerKey(byte[] blob, Ed25519PublicKeyParameters key)
    {
        Blob = blob;
        Key = key;
    }

    public byte[] Blob { get; }

    public Ed25519PublicKeyParameters Key { get; }

    /// <summary><c>SHA256:…</c>, as <c>ssh-keygen -l</c> prints it.</summary>
    public string Fingerprint => "SHA256:" + Convert.ToBase64String(SHA256.HashData(Blob)).TrimEnd('=');

    public static SignerKey Of(Ed25519PublicKeyParameters key) => new(OpenSshPublicKeyUtilities.EncodePublicKey(key), key);

    /// <summary>The key of an OpenSSH key blob; a key of another type is a <see cref="FormatException"/>.</summary>
    public static SignerKey FromBlob(byte[] blob)
    {
        var type = new SshReader(blob).Text();
        if (type != KeyType)
        {
            throw new FormatException($"a {type} key, not {KeyType}");
        }

        try
        {
            return OpenSshPublicKeyUtilities.ParsePublicKey(blob) is Ed25519PublicKeyParameters key
                ? new SignerKey(blob, key)
                : throw new FormatException($"not an {KeyType} key");
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IndexOutOfRangeException)
        {
            throw new FormatException($"not a valid {KeyType} key: {ex.Message}", ex);
        }
    }

    /// <summary>The <c>ssh-ed25519 AAAA…</c> line of an authorized_keys or .pub file.</summary>
    public string ToOpenSsh() => $"{KeyType} {Convert.ToBase64String(Blob)}";

    public bool Equals(SignerKey? other) => other is not null && Blob.AsSpan().SequenceEqual(other.Blob);

    public override bool Equals(object? obj) => Equals(obj as SignerKey);

    public override int GetHashCode() => BitConverter.ToInt32(SHA256.HashData(Blob));

    public override string ToString() => Fingerprint;
}
