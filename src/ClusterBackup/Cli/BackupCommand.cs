using System.CommandLine;
using ClusterBackup.Backup;
using ClusterBackup.Configuration;
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
            Every set is signed with Signing:KeyFile (manifest.json.sig); a configuration with neither
            a signing key nor Signing:Disabled is refused.
            Exit status: 0 if every cluster committed a set, 1 if any failed, 78 on a configuration error.

            Example: cluster-backup backup --cluster prod-admin
            """)
        {
            clusters,
        };
        command.SetAction((parse, cancellationToken) => host.RunAsync(parse, async (services, ct) =>
        {
            var settings = services.GetRequiredService<AgentSettings>();
            var cycle = services.GetRequiredService<BackupCycle>();
            var failed = 0;
            foreach (var cluster in CliHost.SelectClusters(settings, parse.GetValue(clusters)))
            {
                var outcome = await cycle.RunAsync(cluster, ct);
                if (outcome.Failure is { } failure)
                {
                    failed++;
                    await host.Error.WriteLineAsync($"error: {failure.Message}");
                    continue;
                }

                var manifest = outcome.Manifest!;
                await host.Out.WriteLineAsync(
                    $"{cluster.Name}: committed set {manifest.SetId} ({Formatting.Bytes(manifest.StoredBytes)} stored, " +
                    $"etcd revision {manifest.Etcd.Revision} from {manifest.Etcd.Node}, {manifest.Artifacts.Count} artifacts)");
                foreach (var node in manifest.UnreachableNodes)
                {
                    await host.Error.WriteLineAsync($"warning: cluster {cluster.Name}: node {node}: unreachable, its PKI and manifests are missing from set {manifest.SetId}");
                }

                if (outcome.Pruned is { } pruned && pruned.RemovedSets + pruned.AbortedUploads > 0)
                {
                    await host.Out.WriteLineAsync($"{cluster.Name}: pruned {pruned.RemovedSets} sets ({Formatting.Bytes(pruned.RemovedBytes)}), aborted {pruned.AbortedUploads} uploads");
                }

                if (outcome.PruneError is { } pruneError)
                {
                    await host.Error.WriteLineAsync($"warning: cluster {cluster.Name}: prune after the backup failed: {pruneError}; the new set is committed, run 'cluster-backup prune' to retry");
                }
            }

            return failed == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        }, cancellationToken, ConfigurationUse.Backup));
        return command;
    }
}
