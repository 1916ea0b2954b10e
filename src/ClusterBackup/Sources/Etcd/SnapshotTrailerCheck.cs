using System.Security.Cryptography;
using ClusterBackup.Streams;

namespace ClusterBackup.Sources.Etcd;

/// <summary>
/// Passes a snapshot stream through unchanged and, at its end, checks etcd's trailer: the last
/// 32 bytes must be the SHA-256 of everything before them. A mismatch fails the final read, so
/// a consumer that commits only after a clean end never stores a damaged snapshot. The same hash,
/// with the trailer added, is the SHA-256 of the whole stream (<see cref="IDigestingSource"/>).
/// </summary>
internal sealed class SnapshotTrailerCheck(Stream inner, string node) : ObservedReadStream(inner), IDigestingSource
{
    public const int TrailerSize = 32;
    private const int BoltPageAlignment = 512;

    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _tail = new byte[TrailerSize];
    private int _tailLength;
    private long _total;
    private bool _verified;
    private string? _wholeSha256;

    public (long Count, string Sha256Hex) Digest =>
        (_total, _wholeSha256 ?? throw new InvalidOperationException("the snapshot has not ended yet"));

    protected override void Observe(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            Verify();
            return;
        }

        _total += data.Length;
        if (data.Length >= TrailerSize)
        {
            _hash.AppendData(_tail.AsSpan(0, _tailLength));
            _hash.AppendData(data[..^TrailerSize]);
            data[^TrailerSize..].CopyTo(_tail);
            _tailLength = TrailerSize;
            return;
        }

        var overflow = _tailLength + data.Length - TrailerSize;
        if (overflow > 0)
        {
            _hash.AppendData(_tail.AsSpan(0, overflow));
            _tail.AsSpan(overflow, _tailLength - overflow).CopyTo(_tail);
            _tailLength -= overflow;
        }

        data.CopyTo(_tail.AsSpan(_tailLength));
        _tailLength += data.Length;
    }

    private void Verify()
    {
        if (_verified)
        {
            return;
        }

        _verified = true;
        if (_total % BoltPageAlignment != TrailerSize)
        {
            throw new NodeOperationException(node, NodeStep.EtcdSnapshot,
                $"the snapshot is {_total} bytes, not a database plus etcd's 32-byte SHA-256 trailer: the stream was cut short");
        }

        Span<byte> digest = stackalloc byte[TrailerSize];
        _hash.GetCurrentHash(digest);
        if (!digest.SequenceEqual(_tail))
        {
            throw new NodeOperationException(node, NodeStep.EtcdSnapshot,
                "the snapshot's SHA-256 does not match etcd's trailer: the data was damaged in transit");
        }

        _hash.AppendData(_tail);
        _wholeSha256 = Convert.ToHexStringLower(_hash.GetHashAndReset());
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
