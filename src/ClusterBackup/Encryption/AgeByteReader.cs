namespace ClusterBackup.Encryption;

/// <summary>
/// A small read buffer over the encrypted stream, so the header can be read a byte at a time and
/// what was read past it flows on into the payload.
/// </summary>
internal sealed class AgeByteReader(Stream inner)
{
    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _position;
    private int _length;

    public async ValueTask<int> ReadByteAsync(CancellationToken cancellationToken)
    {
        if (_position == _length && !await FillAsync(cancellationToken))
        {
            return -1;
        }

        return _buffer[_position++];
    }

    /// <summary>Reads until <paramref name="destination"/> is full or the stream ends; returns the count read.</summary>
    public async ValueTask<int> ReadFullAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < destination.Length)
        {
            if (_position < _length)
            {
                var count = Math.Min(_length - _position, destination.Length - total);
                _buffer.AsMemory(_position, count).CopyTo(destination[total..]);
                _position += count;
                total += count;
                continue;
            }

            var read = await inner.ReadAsync(destination[total..], cancellationToken);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    private async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
    {
        _position = 0;
        _length = await inner.ReadAsync(_buffer, cancellationToken);
        return _length > 0;
    }
}
