using System.Globalization;
using System.Text.Json;
using ClusterBackup.Configuration;
using ClusterBackup.Sources.Ssh;
using Microsoft.Extensions.Logging;
using Renci.SshNet.Common;

namespace ClusterBackup.Sources.Etcd;

/// <summary>
/// <c>Mode=exec</c>: <c>etcdctl snapshot save</c> on the node into a private temp dir (when the
/// node has room for it, <see cref="SnapshotRoom"/>), compressed there by the node's zstd when it
/// has one and room for the copy (a sixth of the bytes to send), read back
/// once it is saved over an exec channel at the pipeline's pace (<see cref="PacedFileStream"/>,
/// so memory stays bounded), and the temp dir always removed: by the agent, by a guard on the node
/// when the agent is gone, or by the next run. The file is read once the guard says it is saved:
/// reading it while etcdctl still wrote it was measured slower where the agent and the node share
/// cores, and barely faster with a core each (README, Performance).
/// </summary>
internal sealed partial class ExecSnapshotSource(CompressionOptions compression, ILogger<ExecSnapshotSource> logger) : IEtcdSnapshotSource
{
    private const NodeStep Step = NodeStep.EtcdSnapshot;

    /// <summary>
    /// How long the agent waits for the node to remove the snapshot dir. A node that stopped
    /// answering would otherwise hold a cancelled run (SIGTERM, Ctrl-C) until the process is
    /// killed; its guard removes the dir once the connection is gone, or the next run does.
    /// </summary>
    private static readonly TimeSpan RemoveTimeout = TimeSpan.FromSeconds(10);

    public async Task<EtcdSnapshot> OpenAsync(NodeSession session, CancellationToken cancellationToken = default)
    {
        var node = session.Node;
        var facts = await ReadFactsAsync(session, cancellationToken);
        var room = await CheckRoomAsync(session, facts.DbSizeBytes, cancellationToken);
        var wanted = !string.IsNullOrWhiteSpace(node.Etcd.Zstd);
        var compress = wanted && room;
        if (wanted && !room)
        {
            LogNoRoomToCompress(node.Name, NodeCommands.TempDirectory);
        }

        var guard = session.Start(NodeCommands.GuardedSnapshot(node, compress ? compression.Level : null), cancellationToken);
        var lines = new CommandOutputLines(guard.Output, 4096);
        string directory;
        try
        {
            var line = await lines.NextAsync(cancellationToken);
            if (line is null)
            {
                throw await FailedAsync(node, guard, cancellationToken);
            }

            directory = line.StartsWith(NodeCommands.TempPrefix, StringComparison.Ordinal) && !line.Contains('\'', StringComparison.Ordinal)
                ? line
                : throw new NodeOperationException(node.Name, Step, $"the node named an unexpected snapshot dir: {line}");
        }
        catch
        {
            guard.Dispose();
            throw;
        }

        async ValueTask Release()
        {
            try
            {
                await RemoveAsync(session, directory);
            }
            finally
            {
                guard.Dispose();
            }
        }

        var path = $"{directory}/{NodeCommands.SnapshotFile}";
        try
        {
            // The second line says which file is complete; without it, the guard failed.
            var saved = await lines.NextAsync(cancellationToken);
            if (saved is not (NodeCommands.SnapshotSaved or NodeCommands.SnapshotCompressed))
            {
                throw await FailedAsync(node, guard, cancellationToken);
            }

            if (compress && saved == NodeCommands.SnapshotSaved)
            {
                LogSentUncompressed(node.Name, node.Etcd.Zstd);
            }

            path = $"{directory}/{(saved == NodeCommands.SnapshotCompressed ? NodeCommands.CompressedSnapshotFile : NodeCommands.SnapshotFile)}";
            var file = await session.OpenFileAsync(path, Step, cancellationToken);
            return saved == NodeCommands.SnapshotCompressed
                ? new EtcdSnapshot(file, facts, Release) { CompressedCheck = decompressed => new SnapshotTrailerCheck(decompressed, node.Name) }
                : new EtcdSnapshot(new SnapshotTrailerCheck(file, node.Name), facts, Release);
        }
        catch (Exception ex) when (ex is SshException or IOException)
        {
            await Release();
            throw new NodeOperationException(node.Name, Step, $"cannot read the snapshot {path}: {ex.Message}", ex);
        }
        catch
        {
            await Release();
            throw;
        }
    }

    /// <summary>
    /// Refuses to save a snapshot the node's temp dir has no room for (<see cref="SnapshotRoom"/>); a
    /// node whose df cannot say is not refused. Whether there is room to compress it there too: only
    /// when df says so.
    /// </summary>
    private static async Task<bool> CheckRoomAsync(NodeSession session, long databaseBytes, CancellationToken cancellationToken)
    {
        string[] directory = [NodeCommands.TempDirectory];
        var df = await session.RunAsync(NodeCommands.FreeSpace(directory), cancellationToken);
        if (!df.Succeeded || FreeSpace.Parse(df.Output, directory) is not { } space)
        {
            return false;
        }

        if (SnapshotRoom.Problem(space[directory[0]], databaseBytes, directory[0]) is { } problem)
        {
            throw new NodeOperationException(session.Node.Name, Step, problem);
        }

        return SnapshotRoom.HasRoomForCompressedCopy(space[directory[0]], databaseBytes);
    }

    private static async Task<NodeOperationException> FailedAsync(ControlPlaneSettings node, RunningCommand guard, CancellationToken cancellationToken)
    {
        var result = await guard.WaitAsync(cancellationToken);
        return new NodeOperationException(node.Name, Step, $"etcdctl snapshot save failed on the node: {result.ErrorSummary}");
    }

    private async Task RemoveAsync(NodeSession session, string directory)
    {
        // Always, even when the run was cancelled: the file holds every Secret of the cluster.
        if (directory.StartsWith(NodeCommands.TempPrefix, StringComparison.Ordinal))
        {
            using var timeout = new CancellationTokenSource(RemoveTimeout);
            try
            {
                await session.RunAsync(NodeCommands.RemoveTree(directory), timeout.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                LogRemovalUnconfirmed(session.Node.Name, directory, RemoveTimeout.TotalSeconds);
            }
        }
    }

    private static async Task<EtcdFacts> ReadFactsAsync(NodeSession session, CancellationToken cancellationToken)
    {
        var node = session.Node;
        var runner = node.Etcd.Etcdctl;
        var status = await RunJsonAsync(session, NodeCommands.Etcdctl(runner, node, "endpoint", "status", "-w", "json"), cancellationToken);
        var members = await RunJsonAsync(session, NodeCommands.Etcdctl(runner, node, "member", "list", "-w", "json"), cancellationToken);
        // etcdctl 3.4 has no --count-only; a range's count is the total whatever its limit.
        var count = await RunJsonAsync(session, NodeCommands.Etcdctl(runner, node, "get", string.Empty, "--prefix", "--keys-only", "--limit=1", "-w", "json"), cancellationToken);
        try
        {
            var s = status.RootElement[0].GetProperty("Status");
            var header = s.GetProperty("header");
            var memberId = header.GetProperty("member_id").GetUInt64();
            var name = members.RootElement.GetProperty("members").EnumerateArray()
                .Where(m => m.GetProperty("ID").GetUInt64() == memberId)
                .Select(m => m.TryGetProperty("name", out var n) ? n.GetString() : null)
                .FirstOrDefault();
            var countHeader = count.RootElement.GetProperty("header");
            return new EtcdFacts(
                node.Name,
                EtcdModes.Exec,
                name,
                memberId,
                header.GetProperty("cluster_id").GetUInt64(),
                countHeader.GetProperty("revision").GetInt64(),
                count.RootElement.TryGetProperty("count", out var c) ? c.GetInt64() : 0,
                s.GetProperty("version").GetString() ?? "unknown",
                s.GetProperty("dbSize").GetInt64());
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException or FormatException)
        {
            throw new NodeOperationException(node.Name, Step, $"unexpected etcdctl JSON output: {ex.Message}", ex);
        }
    }

    private static async Task<JsonDocument> RunJsonAsync(NodeSession session, string command, CancellationToken cancellationToken)
    {
        var result = await session.RunAsync(command, cancellationToken);
        if (!result.Succeeded)
        {
            throw new NodeOperationException(session.Node.Name, Step,
                $"etcdctl failed on the node (exit status {result.ExitStatus.ToString(CultureInfo.InvariantCulture)}): {result.ErrorSummary}");
        }

        try
        {
            return JsonDocument.Parse(result.Output);
        }
        catch (JsonException ex)
        {
            throw new NodeOperationException(session.Node.Name, Step, $"etcdctl printed no JSON: {ex.Message}", ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Node} sends the snapshot as saved: {Directory} has no room for a compressed copy beside it, or df could not say")]
    private partial void LogNoRoomToCompress(string node, string directory);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Node} sends the snapshot as saved: its zstd ({Zstd}) is missing or failed (Etcd.Zstd)")]
    private partial void LogSentUncompressed(string node, string zstd);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Node} did not confirm within {Seconds}s that it removed the snapshot dir {Directory}: the node's guard removes it once this connection is gone, and the next run removes what is left")]
    private partial void LogRemovalUnconfirmed(string node, string directory, double seconds);
}
