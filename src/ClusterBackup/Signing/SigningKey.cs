using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Utilities;

namespace ClusterBackup.Signing;

/// <summary>The agent's Ed25519 signing key, read from an unencrypted OpenSSH private key file (<c>ssh-keygen -t ed25519 -N ''</c>).</summary>
internal sealed class SigningKey
{
    private const string Begin = "-----BEGIN OPENSSH PRIVATE KEY-----";
    private const string End = "-----END OPENSSH PRIVATE KEY-----";

    private SigningKey(Ed25519PrivateKeyParameters key)
    {
        Key = key;
        Public = SignerKey.Of(key.GeneratePublicKey());
    }

    public Ed25519PrivateKeyParameters Key { get; }

    public SignerKey Public { get; }

    /// <summary>Reads the key file; every problem (unreadable, not OpenSSH, not Ed25519, passphrase) is a <see cref="FormatException"/> that never quotes the key.</summary>
    public static SigningKey Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"cannot be read: {ex.Message}", ex);
        }

        var begin = text.IndexOf(Begin, StringComparison.Ordinal);
        var end = text.IndexOf(End, StringComparison.Ordinal);
        if (begin < 0 || end < begin)
        {
            throw new FormatException("is not an OpenSSH private key (ssh-keygen -t ed25519 -N '' -f FILE writes one)");
        }

        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(text[(begin + Begin.Length)..end]);
        }
        catch (FormatException)
        {
            throw new FormatException("is not an OpenSSH private key: its body is not base64");
        }

        var reader = new SshReader(blob);
        try
        {
            reader.Raw("openssh-key-v1\0".Length);
            if (reader.Text() != "none")
            {
                throw new FormatException("is protected by a passphrase; the agent signs unattended and needs a key without one (ssh-keygen -N '')");
            }

            return OpenSshPrivateKeyUtilities.ParsePrivateKeyBlob(blob) is Ed25519PrivateKeyParameters key
                ? new SigningKey(key)
                : throw new FormatException($"is not an Ed25519 key (ssh-keygen -t ed25519)");
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IndexOutOfRangeException or NotSupportedException)
        {
            throw new FormatException("is not a readable OpenSSH Ed25519 private key", ex);
        }
    }
}
