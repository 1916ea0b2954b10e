using System.Globalization;
using System.Text.RegularExpressions;

namespace ClusterBackup.Sources;

/// <summary>The size of the filesystem a node's path is on, and the space left on it, as the node's <c>df</c> reported them.</summary>
internal sealed partial record FreeSpace(string MountPoint, long TotalBytes, long AvailableBytes)
{
    /// <summary>
    /// The output of <see cref="NodeCommands.FreeSpace"/> for <paramref name="paths"/>, one
    /// <c>df -Pk</c> line per path in the same order; null when it does not read as that.
    /// </summary>
    public static IReadOnlyDictionary<string, FreeSpace>? Parse(string output, IReadOnlyList<string> paths)
    {
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length != paths.Count)
        {
            return null;
        }

        var space = new Dictionary<string, FreeSpace>(StringComparer.Ordinal);
        for (var i = 0; i < lines.Length; i++)
        {
            var match = DfLine().Match(lines[i]);
            if (!match.Success || Bytes(match.Groups["blocks"].Value) is not { } total || Bytes(match.Groups["available"].Value) is not { } available)
            {
                return null;
            }

            space[paths[i]] = new FreeSpace(match.Groups["mount"].Value, total, available);
        }

        return space;
    }

    /// <summary>Less than 1 MiB left, what a write that failed for want of space leaves behind.</summary>
    public bool IsFull => AvailableBytes < 1024 * 1024;

    /// <summary>A size as the messages about free space give it: MiB, one decimal.</summary>
    public static string MiB(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.0} MiB");

    /// <summary>A count of KiB as <c>df -k</c> and <c>du -k</c> print it, in bytes; null when it is not one.</summary>
    public static long? Bytes(string kib) =>
        long.TryParse(kib, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value <= long.MaxValue / 1024 ? value * 1024 : null;

    /// <summary>POSIX <c>df -P</c>: filesystem, 1024-blocks, used, available, capacity, mounted on (which may hold spaces).</summary>
    [GeneratedRegex(@"^.+?\s+(?<blocks>\d+)\s+\d+\s+(?<available>\d+)\s+(\d+%|-)\s+(?<mount>/.*)$")]
    private static partial Regex DfLine();
}
