using System.Buffers.Binary;
using System.Text;
using ClusterBackup.Streams;

namespace ClusterBackup.Certificates;

/// <summary>
/// Reads a tar stream through, unchanged, and hands the content of the regular files it is asked
/// about to a callback as they pass: what is backed up is inspected without a second read and
/// without a file on disk. ustar, GNU long names and pax paths are understood; a file larger than
/// <see cref="MaxCapturedBytes"/> is passed through uncaptured.
/// </summary>
/// <param name="entry">Told the name of every entry (files, links, dirs) as its header passes, if given.</param>
internal sealed class TarEntryObserver(Stream inner, Func<string, bool> wanted, Action<string, byte[]> found, Action<string>? entry = null) : ObservedReadStream(inner)
{
    public const int MaxCapturedBytes = 1 << 20;
    private const int Block = 512;

    private readonly byte[] _header = new byte[Block];
    private int _headerFilled;
    private long _remaining;      // content bytes of the current entry still to come
    private long _padding;        // zero bytes after it up to the block boundary
    private MemoryStream? _capture;
    private string? _captureName;
    private char _type;
    private string? _longName;    // from a GNU 'L' entry or a pax 'path', for the next entry
    private MemoryStream? _meta;  // the content of an 'L' or 'x' entry

    protected override void Observe(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (_remaining > 0)
            {
                var n = (int)Math.Min(_remaining, data.Length);
                (_capture ?? _meta)?.Write(data[..n]);
                _remaining -= n;
                data = data[n..];
                if (_remaining == 0)
                {
                    EntryDone();
                }
            }
            else if (_padding > 0)
            {
                var n = (int)Math.Min(_padding, data.Length);
                _padding -= n;
                data = data[n..];
            }
            else
            {
                var n = Math.Min(Block - _headerFilled, data.Length);
                data[..n].CopyTo(_header.AsSpan(_headerFilled));
                _headerFilled += n;
                data = data[n..];
                if (_headerFilled == Block)
                {
                    _headerFilled = 0;
                    Header();
                }
            }
        }
    }

    private void Header()
    {
        if (_header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
        {
            return; // the end-of-archive blocks
        }

        var size = Size(_header.AsSpan(124, 12));
        _type = (char)_header[156];
        var name = _longName ?? HeaderName();
        _longName = null;
        _remaining = size;
        _padding = (Block - (size % Block)) % Block;
        _capture = null;
        _meta = null;
        if (_type is 'L' or 'x')
        {
            _meta = size <= MaxCapturedBytes ? new MemoryStream() : null;
        }
        else if (_type != 'g') // a pax global header is no entry of its own
        {
            entry?.Invoke(Normalize(name).TrimEnd('/'));
            if (_type is '0' or '\0' or '7' && size <= MaxCapturedBytes && wanted(Normalize(name)))
            {
                _capture = new MemoryStream((int)size);
                _captureName = Normalize(name);
            }
        }

        if (size == 0)
        {
            EntryDone();
        }
    }

    private void EntryDone()
    {
        if (_meta is not null)
        {
            var text = Encoding.UTF8.GetString(_meta.GetBuffer(), 0, (int)_meta.Length);
            _longName = _type == 'L' ? text.TrimEnd('\0') : PaxPath(text) ?? _longName;
            _meta = null;
        }
        else if (_capture is not null)
        {
            found(_captureName!, _capture.ToArray());
            _capture = null;
        }
    }

    private string HeaderName()
    {
        var name = Text(_header.AsSpan(0, 100));
        var magic = Text(_header.AsSpan(257, 6));
        var prefix = magic.StartsWith("ustar", StringComparison.Ordinal) && _header[262] == 0 ? Text(_header.AsSpan(345, 155)) : string.Empty;
        return prefix.Length > 0 ? $"{prefix}/{name}" : name;
    }

    /// <summary>pax records are "LEN key=value\n".</summary>
    private static string? PaxPath(string records)
    {
        foreach (var record in records.Split('\n'))
        {
            var space = record.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && record[(space + 1)..].StartsWith("path=", StringComparison.Ordinal))
            {
                return record[(space + 6)..];
            }
        }

        return null;
    }

    private static long Size(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0)
        {
            // GNU base-256: the remaining bytes, big-endian.
            return BinaryPrimitives.ReadInt64BigEndian(field[4..]);
        }

        long size = 0;
        foreach (var b in field)
        {
            if (b is >= (byte)'0' and <= (byte)'7')
            {
                size = (size * 8) + (b - '0');
            }
            else if (b is 0 or (byte)' ' && size > 0)
            {
                break;
            }
        }

        return size;
    }

    private static string Text(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }

    /// <summary>"./etcd/ca.crt" → "etcd/ca.crt".</summary>
    private static string Normalize(string name) => name.StartsWith("./", StringComparison.Ordinal) ? name[2..] : name;
}
