using System.Globalization;
using System.Text.Json;
using ClusterBackup.Configuration;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Streams;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace ClusterBackup.Sources.Etcd;

/// <summary>
/// <c>Mode=exec</c>: <c>etcdctl snapshot save</c> on the node into a private temp dir, streamed
/// back over SFTP (request-based, so memory stays bounded), and the temp dir always removed: by the
/// agent, by a guard on the node when the agent is gone, or by the next run.
/// </summary>
internal sealed class ExecSnapshotSource : IEtcdSnapshotSource
{
    private const NodeStep Step = NodeStep.EtcdSnapshot;

    public async Task<EtcdSnapshot> OpenAsync(NodeSession session, CancellationToken cancellationToken = default)
    {
        var node = session.Node;
        var facts = await ReadFactsAsync(session, cancellationToken);
        var guard = session.Start(NodeCommands.GuardedSnapshot(node), cancellationToken);
        var lines = new GuardLines(guard.Output);
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

        try
        {
            // The second line says the file is complete; without it, the guard failed.
            var saved = lines.NextAsync(CancellationToken.None);
            var sftp = await session.OpenSftpAsync(cancellationToken);
            Stream file;
            try
            {
                file = await OpenSavedAsync(sftp, directory, saved, node, guard, cancellationToken);
            }
            catch
            {
                sftp.Dispose();
                throw;
            }

            var content = new SnapshotTrailerCheck(new OwningStream(file, sftp), node.Name);
            return new EtcdSnapshot(content, facts, Release);
        }
        catch (Exception ex) when (ex is SshException or IOException)
        {
            await Release();
            throw new NodeOperationException(node.Name, Step, $"cannot read the snapshot {directory}/snapshot.db over SFTP: {ex.Message}", ex);
        }
        catch
        {
            await Release();
            throw;
        }
    }

    /// <summary>
    /// The file is read once the guard says it is saved. Reading it while etcdctl still wrote it saved
    /// a few seconds, but SSH.NET's read-ahead can stall for good on a file that grew after its handle
    /// was opened (seen in the benchmark); and with sudo the file is root's (0600) until the guard hands it over.
    /// </summary>
    private static async Task<Stream> OpenSavedAsync(
        SftpClient sftp, string directory, Task<string?> saved, ControlPlaneSettings node, RunningCommand guard, CancellationToken cancellationToken)
    {
        if (await saved.WaitAsync(cancellationToken) != NodeCommands.SnapshotSaved)
        {
            throw await FailedAsync(node, guard, cancellationToken);
        }

        return await sftp.OpenAsync($"{directory}/snapshot.db", FileMode.Open, FileAccess.Read, cancellationToken);
    }

    private static async Task<NodeOperationException> FailedAsync(ControlPlaneSettings node, RunningCommand guard, CancellationToken cancellationToken)
    {
        var result = await guard.WaitAsync(cancellationToken);
        return new NodeOperationException(node.Name, Step, $"etcdctl snapshot save failed on the node: {result.ErrorSummary}");
    }

    /// <summary>The guard's output, a line at a time.</summary>
    private sealed class GuardLines(Stream output)
    {
        private readonly byte[] _one = new byte[1];

        /// <summary>The next line, or null when the guard's output ended before one.</summary>
        public async Task<string?> NextAsync(CancellationToken cancellationToken)
        {
            var line = new List<byte>();
            while (await output.ReadAsync(_one, cancellationToken) == 1)
            {
                if (_one[0] == (byte)'\n')
                {
                    return System.Text.Encoding.UTF8.GetString([.. line]);
                }

                line.Add(_one[0]);
            }

            return null;
        }
    }

    private static async Task RemoveAsync(NodeSession session, string directory)
    {
        // Always, even when the run was cancelled: the file holds every Secret of the cluster.
        if (directory.StartsWith(NodeCommands.TempPrefix, StringComparison.Ordinal))
        {
            await session.RunAsync(NodeCommands.RemoveTree(directory), CancellationToken.None);
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

    /// <summary>A stream that disposes the client it was opened from.</summary>
    private sealed class OwningStream(Stream inner, IDisposable owner) : ReadOnlyStream
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                owner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
