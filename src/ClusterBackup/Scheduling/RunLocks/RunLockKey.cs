using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace ClusterBackup.Scheduling.RunLocks;

/// <summary>
/// A cluster's lock is named by where its sets are stored and its name, so that agents and
/// commands writing the same sets meet on one lock, and unrelated configurations never do.
/// </summary>
internal static class RunLockKey
{
    public static byte[] Hash(string storedAt) => SHA256.HashData(Encoding.UTF8.GetBytes(storedAt));

    /// <summary>A file name: 32 hex digits.</summary>
    public static string FileName(string storedAt) => Convert.ToHexStringLower(Hash(storedAt).AsSpan(0, 16)) + ".lock";

    /// <summary>The second key of a two-key PostgreSQL advisory lock (non-negative, as pg_locks shows it).</summary>
    public static int AdvisoryObjectId(string storedAt) => BinaryPrimitives.ReadInt32BigEndian(Hash(storedAt)) & int.MaxValue;
}
