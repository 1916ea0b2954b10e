using System.Text;

namespace ClusterBackup.Encryption;

/// <summary>
/// Bech32 (BIP 173) as age uses it for keys: the original checksum, and no 90-character limit.
/// A string must be all lower or all upper case.
/// </summary>
internal static class Bech32
{
    private const string Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    private static readonly uint[] Generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

    public static string Encode(string hrp, ReadOnlySpan<byte> data)
    {
        var values = ConvertBits(data.ToArray(), 8, 5, pad: true)!;
        var checksum = Checksum(hrp, values);
        var builder = new StringBuilder(hrp).Append('1');
        foreach (var v in values.Concat(checksum))
        {
            builder.Append(Charset[v]);
        }

        return builder.ToString();
    }

    public static bool TryDecode(string text, out string hrp, out byte[] data)
    {
        hrp = string.Empty;
        data = [];
        if (text.Any(c => c is < (char)33 or > (char)126) || (text.Any(char.IsLower) && text.Any(char.IsUpper)))
        {
            return false;
        }

        var lower = text.ToLowerInvariant();
        var separator = lower.LastIndexOf('1');
        if (separator < 1 || separator + 7 > lower.Length)
        {
            return false;
        }

        var values = new byte[lower.Length - separator - 1];
        for (var i = 0; i < values.Length; i++)
        {
            var index = Charset.IndexOf(lower[separator + 1 + i], StringComparison.Ordinal);
            if (index < 0)
            {
                return false;
            }

            values[i] = (byte)index;
        }

        hrp = lower[..separator];
        if (Polymod(ExpandHrp(hrp).Concat(values)) != 1)
        {
            return false;
        }

        var decoded = ConvertBits(values[..^6], 5, 8, pad: false);
        if (decoded is null)
        {
            return false;
        }

        data = decoded;
        return true;
    }

    private static byte[] Checksum(string hrp, byte[] values)
    {
        var polymod = Polymod(ExpandHrp(hrp).Concat(values).Concat(new byte[6])) ^ 1;
        return Enumerable.Range(0, 6).Select(i => (byte)((polymod >> (5 * (5 - i))) & 31)).ToArray();
    }

    private static IEnumerable<byte> ExpandHrp(string hrp) =>
        hrp.Select(c => (byte)(c >> 5)).Append((byte)0).Concat(hrp.Select(c => (byte)(c & 31)));

    private static uint Polymod(IEnumerable<byte> values)
    {
        uint chk = 1;
        foreach (var v in values)
        {
            var top = chk >> 25;
            chk = ((chk & 0x1ffffff) << 5) ^ v;
            for (var i = 0; i < 5; i++)
            {
                if (((top >> i) & 1) != 0)
                {
                    chk ^= Generator[i];
                }
            }
        }

        return chk;
    }

    private static byte[]? ConvertBits(byte[] data, int from, int to, bool pad)
    {
        var acc = 0;
        var bits = 0;
        var result = new List<byte>();
        var maxValue = (1 << to) - 1;
        foreach (var value in data)
        {
            acc = (acc << from) | value;
            bits += from;
            while (bits >= to)
            {
                bits -= to;
                result.Add((byte)((acc >> bits) & maxValue));
            }
        }

        if (pad)
        {
            if (bits > 0)
            {
                result.Add((byte)((acc << (to - bits)) & maxValue));
            }
        }
        else if (bits >= from || ((acc << (to - bits)) & maxValue) != 0)
        {
            return null;
        }

        return [.. result];
    }
}
