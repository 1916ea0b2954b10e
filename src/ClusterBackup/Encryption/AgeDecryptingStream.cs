using System.Security.Cryptography;
using ClusterBackup.Streams;

namespace ClusterBackup.Encryption;

/// <summary>
/// Decrypts an age v1 file as it is read. Each chunk is authenticated before any of its bytes
/// are returned; a truncated, extended or altered payload fails the read that reaches it, so a
/// consumer that commits only after a clean end never keeps a damaged plaintext. Does not own
/// the stream it reads from.
/// </summary>
internal sealed class AgeDecryptingStream : ReadOnlyStream
{
    private const int SealedChunkSize = AgeFormat.ChunkSize + AgeFormat.TagSize;

    private readonly AgeByteReader _reader;
    private readonly ChaCha20Poly1305 _aead;
    private readonly byte[] _nonce = new byte[12];
    private byte[] _current = new byte[SealedChunkSize];
    private byte[] _next = new byte[SealedChunkSize];
    private readonly byte[] _plain = new byte[AgeFormat.ChunkSize];
    private int _nextLength = -1;
    private int _plainOffset;
    private int _plainLength;
    private ulong _counter;
    private bool _done;

    private AgeDecryptingStream(AgeByteReader reader, ChaCha20Poly1305 aead)
    {
        _reader = reader;
        _aead = aead;
    }

    /// <summary>Reads and checks the header; throws <see cref="AgeException"/> when it cannot be opened.</summary>
    public static async Task<AgeDecryptingStream> OpenAsync(Stream inner, IReadOnlyList<AgeIdentity> identities, CancellationToken cancellationToken = default)
    {
        var reader = new AgeByteReader(inner);
        var fileKey = await AgeHeader.ReadFileKeyAsync(reader, identities, cancellationToken);
        var nonce = new byte[AgeFormat.NonceSize];
        if (await reader.ReadFullAsync(nonce, cancellationToken) != AgeFormat.NonceSize)
        {
            throw new AgeException(AgeFailure.Header, "the age file ends before its payload nonce");
        }

        var aead = new ChaCha20Poly1305(AgeFormat.PayloadKey(fileKey, nonce));
        CryptographicOperations.ZeroMemory(fileKey);
        return new AgeDecryptingStream(reader, aead);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_plainOffset == _plainLength)
        {
            if (_done)
            {
                return 0;
            }

            await DecryptNextChunkAsync(cancellationToken);
        }

        var count = Math.Min(buffer.Length, _plainLength - _plainOffset);
        _plain.AsMemory(_plainOffset, count).CopyTo(buffer);
        _plainOffset += count;
        return count;
    }

    private async Task DecryptNextChunkAsync(CancellationToken cancellationToken)
    {
        // Read one chunk ahead: a full chunk is the last one only if nothing follows it.
        var length = _nextLength >= 0 ? _nextLength : await _reader.ReadFullAsync(_current, cancellationToken);
        if (_nextLength >= 0)
        {
            (_current, _next) = (_next, _current);
        }

        bool last;
        if (length == SealedChunkSize)
        {
            _nextLength = await _reader.ReadFullAsync(_next, cancellationToken);
            last = _nextLength == 0;
        }
        else
        {
            last = true;
        }

        if (length < AgeFormat.TagSize)
        {
            throw PayloadFailure(_counter == 0 && length == 0 ? "the payload has no chunk" : "a chunk is cut short");
        }

        if (last && length == AgeFormat.TagSize && _counter > 0)
        {
            throw PayloadFailure("the last chunk is empty");
        }

        AgeFormat.ChunkNonce(_counter, last, _nonce);
        var plainLength = length - AgeFormat.TagSize;
        try
        {
            _aead.Decrypt(_nonce, _current.AsSpan(0, plainLength), _current.AsSpan(plainLength, AgeFormat.TagSize), _plain.AsSpan(0, plainLength));
        }
        catch (AuthenticationTagMismatchException)
        {
            throw PayloadFailure($"chunk {_counter} does not authenticate: the file is damaged or truncated");
        }

        _counter++;
        _plainOffset = 0;
        _plainLength = plainLength;
        if (last)
        {
            _done = true;
            if (await AnyMoreAsync(cancellationToken))
            {
                throw PayloadFailure("data follows the last chunk");
            }
        }
    }

    private async Task<bool> AnyMoreAsync(CancellationToken cancellationToken) =>
        await _reader.ReadFullAsync(new byte[1], cancellationToken) > 0;

    private static AgeException PayloadFailure(string detail) => new(AgeFailure.Payload, $"the age payload is invalid: {detail}");

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _aead.Dispose();
            CryptographicOperations.ZeroMemory(_plain);
        }

        base.Dispose(disposing);
    }
}
