using System.Globalization;
using System.Text.RegularExpressions;

namespace ClusterBackup.Restore;

/// <summary>The space left on the filesystem a node's path is on, as the node's <c>df</c> reported it.</summary>
internal sealed partial record FreeSpace(string MountPoint, long AvailableBytes)
{
    /// <summary>
    /// The output of <see cref="Sources.NodeCommands.FreeSpace"/> for <paramref name="paths"/>, one
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
            if (!match.Success || !long.TryParse(match.Groups["available"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var kib) || kib > long.MaxValue / 1024)
            {
                return null;
            }

            space[paths[i]] = new FreeSpace(match.Groups["mount"].Value, kib * 1024);
        }

        return space;
    }

    /// <summary>POSIX <c>df -P</c>: filesystem, 1024-blocks, used, available, capacity, mounted on (which may hold spaces).</summary>
    [GeneratedRegex(@"^.+?\s+\d+\s+\d+\s+(?<available>\d+)\s+(\d+%|-)\s+(?<mount>/.*)$")]
    private static partial Regex DfLine();
}
