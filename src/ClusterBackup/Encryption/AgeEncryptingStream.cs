using System.Security.Cryptography;
using ClusterBackup.Streams;

namespace ClusterBackup.Encryption;

/// <summary>
/// Encrypts what is written to it into the age v1 format on <paramref name="inner"/>: the header
/// for the recipients, a nonce, and the payload as 64 KiB ChaCha20-Poly1305 STREAM chunks.
/// <see cref="FinishAsync"/> writes the last chunk; a stream disposed without it is not a valid
/// age file, so a failed run can never leave a file that decrypts to a truncated plaintext.
/// </summary>
internal sealed class AgeEncryptingStream : Stream
{
    private readonly Stream _inner;
    private readonly IReadOnlyList<AgeRecipient> _recipients;
    private readonly byte[] _fileKey = RandomNumberGenerator.GetBytes(AgeFormat.FileKeySize);
    private readonly byte[] _plain = new byte[AgeFormat.ChunkSize];
    private readonly byte[] _sealed = new byte[AgeFormat.ChunkSize + AgeFormat.TagSize];
    private readonly byte[] _nonce = new byte[12];
    private ChaCha20Poly1305? _aead;
    private int _filled;
    private ulong _counter;
    private bool _finished;

    public AgeEncryptingStream(Stream inner, IReadOnlyList<AgeRecipient> recipients)
    {
        if (recipients.Count == 0)
        {
            throw new ArgumentException("at least one recipient is required", nameof(recipients));
        }

        _inner = inner;
        _recipients = recipients;
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        await StartAsync(cancellationToken);
        while (!buffer.IsEmpty)
        {
            // A full chunk is sealed only once more data arrives: the last chunk may be full.
            if (_filled == _plain.Length)
            {
                await SealAsync(last: false, cancellationToken);
            }

            var count = Math.Min(buffer.Length, _plain.Length - _filled);
            buffer[..count].CopyTo(_plain.AsMemory(_filled));
            _filled += count;
            buffer = buffer[count..];
        }
    }

    /// <summary>Writes the last chunk. The age file is complete only after this.</summary>
    public async Task FinishAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        await StartAsync(cancellationToken);
        await SealAsync(last: true, cancellationToken);
        _finished = true;
        await _inner.FlushAsync(cancellationToken);
    }

    private async ValueTask StartAsync(CancellationToken cancellationToken)
    {
        if (_aead is not null)
        {
            return;
        }

        var nonce = RandomNumberGenerator.GetBytes(AgeFormat.NonceSize);
        await _inner.WriteAsync(AgeHeader.Write(_fileKey, _recipients), cancellationToken);
        await _inner.WriteAsync(nonce, cancellationToken);
        _aead = new ChaCha20Poly1305(AgeFormat.PayloadKey(_fileKey, nonce));
    }

    private async ValueTask SealAsync(bool last, CancellationToken cancellationToken)
    {
        AgeFormat.ChunkNonce(_counter++, last, _nonce);
        _aead!.Encrypt(_nonce, _plain.AsSpan(0, _filled), _sealed.AsSpan(0, _filled), _sealed.AsSpan(_filled, AgeFormat.TagSize));
        await _inner.WriteAsync(_sealed.AsMemory(0, _filled + AgeFormat.TagSize), cancellationToken);
        _filled = 0;
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _aead?.Dispose();
            CryptographicOperations.ZeroMemory(_fileKey);
            CryptographicOperations.ZeroMemory(_plain);
            _finished = true;
        }

        base.Dispose(disposing);
    }
}
