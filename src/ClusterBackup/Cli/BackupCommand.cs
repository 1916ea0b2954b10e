using System.CommandLine;
using ClusterBackup.Backup;
using ClusterBackup.Configuration;
using ClusterBackup.Retention;
using ClusterBackup.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterBackup.Cli;

/// <summary><c>cluster-backup backup [--cluster NAME]...</c>: one backup now.</summary>
internal static class BackupCommand
{
    public static Command Create(CliHost host)
    {
        var clusters = new Option<string[]>("--cluster")
        {
            Description = "Back up only this cluster (repeatable); all clusters when omitted",
            HelpName = "NAME",
        };
        var command = new Command("backup", """
            Take one backup of every configured cluster now, or of the clusters named with --cluster.
            Each cluster commits a complete set (etcd snapshot, PKI and static-pod manifests of each
            control plane, manifest.json last) or nothing. One cluster failing does not stop the others.
            After each committed set, the cluster's retention policy is applied (as 'prune').
            Exit status: 0 if every cluster committed a set, 1 if any failed, 78 on a configuration error.

            Example: cluster-backup backup --cluster prod-admin
            """)
        {
            clusters,
        };
        command.SetAction((parse, cancellationToken) => host.RunAsync(parse, async (services, ct) =>
        {
            var settings = services.GetRequiredService<AgentSettings>();
            var run = services.GetRequiredService<BackupRun>();
            var pruner = services.GetRequiredService<PruneService>();
            var failed = 0;
            foreach (var cluster in CliHost.SelectClusters(settings, parse.GetValue(clusters)))
            {
                try
                {
                    var manifest = await run.RunAsync(cluster, ct);
                    await host.Out.WriteLineAsync(
                        $"{cluster.Name}: committed set {manifest.SetId} ({Formatting.Bytes(manifest.StoredBytes)} stored, " +
                        $"etcd revision {manifest.Etcd.Revision} from {manifest.Etcd.Node}, {manifest.Artifacts.Count} artifacts)");
                    foreach (var node in manifest.UnreachableNodes)
                    {
                        await host.Error.WriteLineAsync($"warning: cluster {cluster.Name}: node {node}: unreachable, its PKI and manifests are missing from set {manifest.SetId}");
                    }
                }
                catch (BackupFailedException ex)
                {
                    failed++;
                    await host.Error.WriteLineAsync($"error: {ex.Message}");
                    continue;
                }

                // Retention runs after every successful backup; its failure does not undo the backup.
                try
                {
                    var result = await pruner.ApplyAsync(await pruner.PlanAsync(cluster, ct), ct);
                    if (result.RemovedSets + result.AbortedUploads > 0)
                    {
                        await host.Out.WriteLineAsync($"{cluster.Name}: pruned {result.RemovedSets} sets ({Formatting.Bytes(result.RemovedBytes)}), aborted {result.AbortedUploads} uploads");
                    }
                }
                catch (StorageException ex)
                {
                    await host.Error.WriteLineAsync($"warning: cluster {cluster.Name}: prune after the backup failed: {ex.Message}; the new set is committed, run 'cluster-backup prune' to retry");
                }
            }

            return failed == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        }, cancellationToken));
        return command;
    }
}
