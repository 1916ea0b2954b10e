using System.Buffers.Binary;
using System.Text;

namespace ClusterBackup.Signing;

/// <summary>The SSH wire encoding (RFC 4251 §5) of the few types an SSHSIG envelope holds: uint32 and string.</summary>
internal sealed class SshWriter
{
    private readonly MemoryStream _buffer = new();

    public SshWriter Raw(ReadOnlySpan<byte> bytes)
    {
        _buffer.Write(bytes);
        return this;
    }

    public SshWriter UInt32(uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return Raw(bytes);
    }

    public SshWriter String(ReadOnlySpan<byte> value) => UInt32((uint)value.Length).Raw(value);

    public SshWriter String(string value) => String(Encoding.UTF8.GetBytes(value));

    public byte[] ToArray() => _buffer.ToArray();
}

/// <summary>Reads what <see cref="SshWriter"/> writes; a truncated or overlong field is a <see cref="FormatException"/>.</summary>
internal sealed class SshReader(byte[] data)
{
    private int _position;

    public bool AtEnd => _position == data.Length;

    public byte[] Raw(int length)
    {
        if (length < 0 || length > data.Length - _position)
        {
            throw new FormatException("truncated");
        }

        var bytes = data.AsSpan(_position, length).ToArray();
        _position += length;
        return bytes;
    }

    public uint UInt32() => BinaryPrimitives.ReadUInt32BigEndian(Raw(4));

    public byte[] String()
    {
        var length = UInt32();
        return length > int.MaxValue ? throw new FormatException("truncated") : Raw((int)length);
    }

    public string Text() => Encoding.UTF8.GetString(String());
}
