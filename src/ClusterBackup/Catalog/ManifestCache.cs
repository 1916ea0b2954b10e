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
    private const string TemporarySuffix = ".tmp";

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

    /// <summary>A cluster's entries whose bytes have the MD5 they are kept under; empty when there are none or the file cannot be read.</summary>
    public IReadOnlyDictionary<string, byte[]> Load(string cluster)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (PathOf(cluster) is not { } path)
        {
            return entries;
        }

        byte[] file;
        try
        {
            file = File.ReadAllBytes(path);
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

        var rest = file.AsSpan();
        if (!rest.StartsWith(Magic))
        {
            return entries;
        }

        // Entries: MD5 (16 bytes), length (4, big-endian), bytes. A truncated tail ends the read.
        for (rest = rest[Magic.Length..]; rest.Length >= 20;)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(rest[16..]);
            if (length < 0 || length > rest.Length - 20)
            {
                break;
            }

            var md5 = Convert.ToHexStringLower(rest[..16]);
            var bytes = rest.Slice(20, length).ToArray();
            if (Md5Hex(bytes) == md5)
            {
                entries[md5] = bytes;
            }

            rest = rest[(20 + length)..];
        }

        return entries;
    }

    /// <summary>
    /// Replaces a cluster's file with the given entries (MD5 → bytes), atomically; removes writes
    /// that a killed process left more than an hour ago.
    /// </summary>
    public void Save(string cluster, IReadOnlyDictionary<string, byte[]> entries)
    {
        if (PathOf(cluster) is not { } path)
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

            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogUnusable(path, ex.Message);
            TryDelete(temporary);
        }

        RemoveAbandonedWrites(cluster);
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

    private void RemoveAbandonedWrites(string cluster)
    {
        try
        {
            foreach (var file in new DirectoryInfo(directory!).EnumerateFiles($"{cluster}{FileSuffix}.*{TemporarySuffix}"))
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
