using System.Globalization;
using System.Text.Json;
using ClusterBackup.Configuration;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Streams;
using Renci.SshNet.Common;

namespace ClusterBackup.Sources.Etcd;

/// <summary>
/// <c>Mode=exec</c>: <c>etcdctl snapshot save</c> on the node into a private temp dir, streamed
/// back over SFTP (request-based, so memory stays bounded), and the temp dir always removed.
/// </summary>
internal sealed class ExecSnapshotSource : IEtcdSnapshotSource
{
    private const string Step = "etcd snapshot";

    public async Task<EtcdSnapshot> OpenAsync(NodeSession session, CancellationToken cancellationToken = default)
    {
        var node = session.Node;
        var facts = await ReadFactsAsync(session, cancellationToken);

        // etcdctl renames a .part file over its target, so it needs a real file, never stdout.
        var chown = node.Ssh.Sudo ? $" && chown -R {ShellQuote.Quote(node.Ssh.User)} \"$d\"" : string.Empty;
        var save = await session.RunAsync(
            "umask 077 && d=$(mktemp -d /var/tmp/cluster-backup.XXXXXX) && " +
            $"{Etcdctl(node)} snapshot save \"$d/snapshot.db\" >&2{chown} && echo \"$d\"",
            cancellationToken);
        var directory = save.Output.Trim().Split('\n').LastOrDefault()?.Trim();
        if (!save.Succeeded || string.IsNullOrEmpty(directory))
        {
            if (!string.IsNullOrEmpty(directory))
            {
                await RemoveAsync(session, directory);
            }

            throw new NodeOperationException(node.Name, Step, $"etcdctl snapshot save failed on the node: {save.ErrorSummary}");
        }

        async ValueTask Release() => await RemoveAsync(session, directory);

        try
        {
            var sftp = await session.OpenSftpAsync(cancellationToken);
            var file = await sftp.OpenAsync($"{directory}/snapshot.db", FileMode.Open, FileAccess.Read, cancellationToken);
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

    private static async Task RemoveAsync(NodeSession session, string directory)
    {
        // Always, even when the run was cancelled: the file holds every Secret of the cluster.
        if (directory.StartsWith("/var/tmp/cluster-backup.", StringComparison.Ordinal))
        {
            await session.RunAsync($"rm -rf {ShellQuote.Quote(directory)}", CancellationToken.None);
        }
    }

    private static string Etcdctl(ControlPlaneSettings node)
    {
        var files = EtcdClientFiles.For(node.Paths);
        return $"ETCDCTL_API=3 {node.Etcd.Etcdctl} --endpoints=https://127.0.0.1:{node.Etcd.ClientPort} {files.EtcdctlFlags}";
    }

    private static async Task<EtcdFacts> ReadFactsAsync(NodeSession session, CancellationToken cancellationToken)
    {
        var node = session.Node;
        var etcdctl = Etcdctl(node);
        var status = await RunJsonAsync(session, $"{etcdctl} endpoint status -w json", cancellationToken);
        var members = await RunJsonAsync(session, $"{etcdctl} member list -w json", cancellationToken);
        // etcdctl 3.4 has no --count-only; a range's count is the total whatever its limit.
        var count = await RunJsonAsync(session, $"{etcdctl} get '' --prefix --keys-only --limit=1 -w json", cancellationToken);
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
