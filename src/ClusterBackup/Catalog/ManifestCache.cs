using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Catalog;

/// <summary>
/// Manifests already read from S3, kept on local disk, so that a scan (list, verify, prune, the
/// daemon's runs) reads a set's manifest from storage once, not once per scan. One file per
/// cluster holds the manifests of its last scan, each under the MD5 that the listing gives as the
/// object's ETag, and an entry is used only when its bytes have the MD5 the listing names now:
/// whatever the file holds, a scan sees the bytes storage holds. A store whose ETags are not the
/// MD5 of the content (SSE-KMS, some S3-compatibles, a directory) is simply read each time.
/// Best effort: a cache that cannot be read or written costs the reads it would have saved.
/// </summary>
internal sealed partial class ManifestCache(string? directory, TimeProvider time, ILogger<ManifestCache> logger)
{
    private static readonly byte[] Magic = Encoding.ASCII.GetBytes("cluster-backup manifests 1\n");
    private static readonly TimeSpan AbandonedWriteAge = TimeSpan.FromHours(1);
    private const string FileSuffix = ".manifests";
    private const string VerifiedSuffix = ".verified";
    private const string TemporarySuffix = ".tmp";

    /// <summary>An entry longer than this ends a read: a manifest is a few KiB.</summary>
    private const int MaxEntryLength = 16 * 1024 * 1024;

    /// <summary>
    /// systemd's CacheDirectory for the unit, else <c>$XDG_CACHE_HOME/cluster-backup</c>, else
    /// <c>~/.cache/cluster-backup</c>; null (no cache) when none is known.
    /// </summary>
    public static string? DefaultDirectory(Func<string, string?> environment)
    {
        if (environment("CACHE_DIRECTORY") is { Length: > 0 } systemd)
        {
            return Path.Combine(systemd.Split(':')[0], "manifests");
        }

        if (environment("XDG_CACHE_HOME") is { Length: > 0 } xdg && Path.IsPathRooted(xdg))
        {
            return Path.Combine(xdg, "cluster-backup", "manifests");
        }

        return environment("HOME") is { Length: > 0 } home && Path.IsPathRooted(home)
            ? Path.Combine(home, ".cache", "cluster-backup", "manifests")
            : null;
    }

    /// <summary>The MD5 an ETag states, in lowercase hex; null for any other ETag (a multipart or encrypted object's).</summary>
    public static string? Md5OfETag(string? etag)
    {
        var value = etag?.Trim('"');
        return value is { Length: 32 } && value.All(char.IsAsciiHexDigit) ? value.ToLowerInvariant() : null;
    }

    /// <summary>The file of a cluster's entries; null without a cache directory.</summary>
    public string? PathOf(string cluster) => directory is null ? null : Path.Combine(directory, cluster + FileSuffix);

    /// <summary>Whether a cluster has a cache file (of any content).</summary>
    public bool Exists(string cluster) => PathOf(cluster) is { } path && File.Exists(path);

    /// <summary>A cluster's entries whose bytes have the MD5 they are kept under; empty when there are none or the file cannot be read.</summary>
    public IReadOnlyDictionary<string, byte[]> Load(string cluster) => LoadFile(PathOf(cluster));

    /// <summary>
    /// The verdicts a cluster's earlier signature checks on this machine wrote (see
    /// <see cref="SignatureVerdict"/>): a file of its own, never stored beside the sets.
    /// </summary>
    public IReadOnlySet<string> LoadVerified(string cluster) =>
        LoadFile(VerifiedPathOf(cluster)).Values.Where(v => v.Length == SignatureVerdict.Length).Select(Convert.ToHexStringLower).ToHashSet(StringComparer.Ordinal);

    /// <summary>Replaces a cluster's verdicts with these.</summary>
    public void SaveVerified(string cluster, IEnumerable<string> verdicts)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var bytes in verdicts.Select(Convert.FromHexString))
        {
            if (Md5Hex(bytes) is not { } md5)
            {
                return; // MD5 refused (FIPS): nothing is cached
            }

            entries[md5] = bytes;
        }

        SaveFile(VerifiedPathOf(cluster), entries);
    }

    private string? VerifiedPathOf(string cluster) => directory is null ? null : Path.Combine(directory, cluster + VerifiedSuffix);

    private IReadOnlyDictionary<string, byte[]> LoadFile(string? path)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (path is null)
        {
            return entries;
        }

        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024);
            return new Dictionary<string, byte[]>(ReadEntries(file, _ => true), StringComparer.Ordinal);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return entries;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogUnusable(path, ex.Message);
            return entries;
        }
    }

    /// <summary>
    /// The entries of a cache's bytes (a local file's, or the stored copy's once decompressed) that
    /// <paramref name="wanted"/> names by MD5 and whose bytes have that MD5, each once, read as they
    /// are enumerated; a truncated or malformed tail ends them, and bytes that are not a cache give none.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, byte[]>> ReadEntries(Stream stream, Func<string, bool> wanted)
    {
        var magic = new byte[Magic.Length];
        if (stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false) < magic.Length || !magic.AsSpan().SequenceEqual(Magic))
        {
            yield break;
        }

        // Entries: MD5 (16 bytes), length (4, big-endian), bytes.
        var header = new byte[20];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) == header.Length)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(16));
            if (length is < 0 or > MaxEntryLength)
            {
                yield break;
            }

            var md5 = Convert.ToHexStringLower(header, 0, 16);
            var bytes = new byte[length];
            if (stream.ReadAtLeast(bytes, length, throwOnEndOfStream: false) < length)
            {
                yield break;
            }

            if (wanted(md5) && Md5Hex(bytes) == md5 && seen.Add(md5))
            {
                yield return new(md5, bytes);
            }
        }
    }

    /// <summary>Writes entries (MD5 → bytes) in the cache's format, in MD5 order.</summary>
    public static void WriteEntries(Stream stream, IReadOnlyDictionary<string, byte[]> entries)
    {
        stream.Write(Magic);
        Span<byte> length = stackalloc byte[4];
        foreach (var (md5, bytes) in entries.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            stream.Write(Convert.FromHexString(md5));
            BinaryPrimitives.WriteInt32BigEndian(length, bytes.Length);
            stream.Write(length);
            stream.Write(bytes);
        }
    }

    /// <summary>
    /// Replaces a cluster's file with the given entries (MD5 → bytes), atomically; removes writes
    /// that a killed process left more than an hour ago.
    /// </summary>
    public void Save(string cluster, IReadOnlyDictionary<string, byte[]> entries) => SaveFile(PathOf(cluster), entries);

    private void SaveFile(string? path, IReadOnlyDictionary<string, byte[]> entries)
    {
        if (path is null)
        {
            return;
        }

        var temporary = $"{path}.{Guid.NewGuid():N}{TemporarySuffix}";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            using (var stream = new FileStream(temporary, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 64 * 1024, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                WriteEntries(stream, entries);
            }

            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogUnusable(path, ex.Message);
            TryDelete(temporary);
        }

        RemoveAbandonedWrites(path);
    }

    /// <summary>The MD5 of bytes in lowercase hex; null where the platform refuses MD5 (OpenSSL in FIPS mode): then nothing is cached.</summary>
    public static string? Md5Hex(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return Convert.ToHexStringLower(MD5.HashData(bytes));
        }
        catch (Exception ex) when (ex is CryptographicException or PlatformNotSupportedException)
        {
            return null;
        }
    }

    private void RemoveAbandonedWrites(string path)
    {
        try
        {
            foreach (var file in new DirectoryInfo(directory!).EnumerateFiles($"{Path.GetFileName(path)}.*{TemporarySuffix}"))
            {
                if (time.GetUtcNow() - file.LastWriteTimeUtc > AbandonedWriteAge)
                {
                    TryDelete(file.FullName);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogUnusable(directory!, ex.Message);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left for a later save.
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Manifest cache {Path} not used: {Reason}")]
    private partial void LogUnusable(string path, string reason);
}
