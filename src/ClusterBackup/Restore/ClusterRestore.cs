using System.Formats.Tar;
using System.Globalization;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Encryption;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Ssh;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Restore;

/// <summary>What the operator asked for.</summary>
internal sealed record RestoreRequest(
    ClusterSettings Cluster, string Set, IReadOnlyCollection<string> Members, bool Force, bool Pki, IReadOnlyList<AgeIdentity>? Identities, bool DryRun);

/// <summary>The restore refused to act; nothing was changed.</summary>
internal sealed class RestoreRefusedException(string message) : Exception(message);

/// <summary>
/// The restore runbook for a cluster: assess every member's health, decide (<see cref="RestorePlanner"/>),
/// print the plan, then prepare every member and only when all are prepared start them; a failure
/// while preparing rolls every touched member back. Ends with health, member list and revision.
/// </summary>
internal sealed partial class ClusterRestore(
    SshNodeConnector connector, BackupCatalog catalog, SetDownloader downloader, TimeProvider time, ILogger<ClusterRestore> logger)
{
    public async Task RunAsync(RestoreRequest request, Func<string, bool> confirm, TextWriter output, CancellationToken cancellationToken = default)
    {
        var cluster = request.Cluster;
        var set = await catalog.FindSetAsync(cluster.Name, request.Set, cancellationToken);
        using var sessions = new NodeSessions(connector);
        var health = new List<MemberHealth>();
        foreach (var node in cluster.ControlPlanes)
        {
            health.Add(await AssessAsync(sessions, node, cancellationToken));
        }

        await output.WriteLineAsync($"cluster {cluster.Name}, set {set.Id} (etcd revision {set.Manifest.Etcd.Revision}, {set.Manifest.Etcd.KeyCount} keys):");
        foreach (var member in health)
        {
            await output.WriteLineAsync($"  {member.Name}: {(member.Healthy ? "healthy" : "NOT healthy")} ({member.Detail})");
        }

        var decision = RestorePlanner.Decide(health, request.Members, request.Force);
        if (decision.Refusal is { } refusal)
        {
            throw new RestoreRefusedException($"cluster {cluster.Name}: restore refused: {refusal}");
        }

        await output.WriteLineAsync($"plan: {decision.Reason}");
        if (!request.DryRun && !confirm($"Restore {string.Join(", ", decision.Members)} of cluster {cluster.Name} from set {set.Id}? Their current etcd data is moved aside."))
        {
            throw new RestoreRefusedException("restore not confirmed; nothing was changed");
        }

        var work = request.DryRun ? null : Directory.CreateTempSubdirectory("cluster-backup-restore-").FullName;
        try
        {
            var files = work is null ? [] : await downloader.DownloadAsync(set, work, request.Identities, cancellationToken);
            var stamp = time.GetUtcNow().ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
            var members = new List<MemberRestore>();
            foreach (var name in decision.Members)
            {
                var node = cluster.ControlPlanes.First(cp => cp.Name == name);
                members.Add(new MemberRestore(await sessions.GetAsync(node, cancellationToken), set.Id.ToString(), stamp, request.DryRun, output));
            }

            if (request.DryRun)
            {
                await output.WriteLineAsync("dry run: the commands, per member; nothing is changed:");
            }

            await PrepareAllAsync(members, files, request, cancellationToken);
            foreach (var member in members)
            {
                await member.StartAsync(cancellationToken);
                await member.RemoveStagedFilesAsync(cancellationToken);
            }

            foreach (var member in members)
            {
                try
                {
                    await member.WaitHealthyAsync(cancellationToken);
                }
                catch (RestoreStepFailedException ex)
                {
                    throw new RestoreStepFailedException(ex.Node, ex.Step,
                        $"{ex.Message}; the restored data is in place and the old data dir is kept as {{EtcdData}}.before-restore-{stamp}", ex);
                }
            }

            if (!request.DryRun)
            {
                await ReportAsync(sessions, cluster, decision.Members, set, output, cancellationToken);
            }
        }
        finally
        {
            if (work is not null)
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    private async Task PrepareAllAsync(List<MemberRestore> members, IReadOnlyList<DownloadedFile> files, RestoreRequest request, CancellationToken cancellationToken)
    {
        var snapshot = files.FirstOrDefault(f => f.Artifact.Kind == ArtifactKinds.EtcdSnapshot)?.Path;
        var touched = new List<MemberRestore>();
        try
        {
            foreach (var member in members)
            {
                var flags = await member.ReadFlagsAsync(cancellationToken);
                string? backedUp = null;
                if (flags is null)
                {
                    // The node lost etcd.yaml: take it from the set's manifests archive of this node.
                    var archive = files.FirstOrDefault(f => f.Artifact.Kind == ArtifactKinds.Manifests && f.Artifact.Node == member.Name)?.Path;
                    backedUp = archive is null ? null : await ExtractEtcdYamlAsync(archive, cancellationToken);
                    flags = backedUp is null ? null : StaticPodFlags.Parse(await File.ReadAllTextAsync(backedUp, cancellationToken));
                    if (flags is null)
                    {
                        throw new RestoreStepFailedException(member.Name, "read etcd.yaml",
                            "etcd.yaml is not on the node and not in the set: --name, --initial-cluster and --initial-advertise-peer-urls are unknown");
                    }
                }

                var pki = request.Pki ? files.FirstOrDefault(f => f.Artifact.Kind == ArtifactKinds.Pki && f.Artifact.Node == member.Name)?.Path : null;
                if (request.Pki && pki is null && !request.DryRun)
                {
                    throw new RestoreStepFailedException(member.Name, "restore pki", $"the set has no PKI archive of {member.Name}");
                }

                touched.Add(member);
                await member.PrepareAsync(snapshot, request.Pki, pki, flags, backedUp, cancellationToken);
            }
        }
        catch (Exception ex) when (ex is RestoreStepFailedException or NodeOperationException or OperationCanceledException)
        {
            foreach (var member in Enumerable.Reverse(touched))
            {
                await member.RollbackAsync();
                LogRolledBack(member.Name);
            }

            var rolledBack = touched.Count == 0 || request.DryRun ? string.Empty : $"; rolled back: {string.Join(", ", touched.Select(m => m.Name))} (data dirs and manifests as they were)";
            throw ex switch
            {
                RestoreStepFailedException step => new RestoreStepFailedException(step.Node, step.Step, step.Message + rolledBack, step),
                NodeOperationException node => new RestoreStepFailedException(node.Node, node.Step.Describe(), node.Message + rolledBack, node),
                _ => ex,
            };
        }
    }

    private static async Task<string?> ExtractEtcdYamlAsync(string archive, CancellationToken cancellationToken)
    {
        await using var stream = File.OpenRead(archive);
        await using var reader = new TarReader(stream);
        while (await reader.GetNextEntryAsync(cancellationToken: cancellationToken) is { } entry)
        {
            if (entry.Name.TrimStart('.', '/') == "etcd.yaml" && entry.DataStream is not null)
            {
                var path = Path.Combine(Path.GetDirectoryName(archive)!, $"etcd-{Path.GetFileNameWithoutExtension(archive)}.yaml");
                await using var output = File.Create(path);
                await entry.DataStream.CopyToAsync(output, cancellationToken);
                return path;
            }
        }

        return null;
    }

    private static async Task<MemberHealth> AssessAsync(NodeSessions sessions, ControlPlaneSettings node, CancellationToken cancellationToken)
    {
        NodeSession session;
        try
        {
            session = await sessions.GetAsync(node, cancellationToken);
        }
        catch (NodeOperationException ex)
        {
            return new MemberHealth(node.Name, false, false, ex.Message);
        }

        var probe = await session.RunAsync(
            NodeCommands.Etcdctl(node.Etcd.Etcdctl, node, "--dial-timeout=3s", "--command-timeout=5s", "endpoint", "health"),
            cancellationToken);
        return new MemberHealth(node.Name, true, probe.Succeeded, probe.Succeeded ? "endpoint health ok" : probe.ErrorSummary);
    }

    private static async Task ReportAsync(
        NodeSessions sessions, ClusterSettings cluster, IReadOnlyList<string> restored, CatalogSet set, TextWriter output, CancellationToken cancellationToken)
    {
        var first = cluster.ControlPlanes.First(cp => cp.Name == restored[0]);
        var session = await sessions.GetAsync(first, cancellationToken);
        var endpoints = string.Join(',', cluster.ControlPlanes.Where(cp => restored.Contains(cp.Name)).Select(cp => $"https://127.0.0.1:{cp.Etcd.ClientPort}"));
        var runner = first.Restore.Etcdctl;
        var health = await session.RunAsync(NodeCommands.EtcdctlAt(runner, first.Paths, endpoints, "endpoint", "health") + " 2>&1", cancellationToken);
        var list = await session.RunAsync(NodeCommands.Etcdctl(runner, first, "member", "list"), cancellationToken);
        var status = await session.RunAsync(NodeCommands.Etcdctl(runner, first, "endpoint", "status", "-w", "table"), cancellationToken);
        await output.WriteLineAsync($"endpoint health:\n{health.Output.TrimEnd()}");
        await output.WriteLineAsync($"member list:\n{list.Output.TrimEnd()}");
        await output.WriteLineAsync($"restored set {set.Id}: etcd revision {set.Manifest.Etcd.Revision} at backup time\n{status.Output.TrimEnd()}");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rolled back {Node}: old data dir and static pod manifests returned")]
    private partial void LogRolledBack(string node);
}
