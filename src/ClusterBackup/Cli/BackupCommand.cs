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
            Up to Scheduler:MaxConcurrentRuns clusters are backed up at once. A cluster that the daemon
            (or another agent sharing the PostgreSQL scheduler) is backing up is refused, not mixed.
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
            var parallel = new ParallelOptions { MaxDegreeOfParallelism = settings.Scheduler.MaxConcurrentRuns, CancellationToken = ct };
            var output = new SemaphoreSlim(1, 1);
            await Parallel.ForEachAsync(CliHost.SelectClusters(settings, parse.GetValue(clusters)), parallel, async (cluster, token) =>
            {
                var outcome = await cycle.RunAsync(cluster, CycleTrigger.Command, cancellationToken: token);
                var (lines, ok) = Report(cluster, outcome);
                await output.WaitAsync(CancellationToken.None);
                try
                {
                    foreach (var (error, line) in lines)
                    {
                        await (error ? host.Error : host.Out).WriteLineAsync(line);
                    }
                }
                finally
                {
                    output.Release();
                }

                if (!ok)
                {
                    Interlocked.Increment(ref failed);
                }
            });

            return failed == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        }, cancellationToken, ConfigurationUse.Backup));
        return command;
    }

    /// <summary>What to print for one cluster's cycle (each line to stderr or not), and whether it committed a set.</summary>
    private static (List<(bool Error, string Line)> Lines, bool Ok) Report(ClusterSettings cluster, CycleOutcome outcome)
    {
        var lines = new List<(bool, string)>();
        if (outcome.Skipped is { } skipped)
        {
            lines.Add((true, $"error: cluster {cluster.Name}: {skipped}; nothing was written, try again when it ends"));
            return (lines, false);
        }

        if (outcome.Failure is { } failure)
        {
            lines.Add((true, $"error: {failure.Message}"));
            return (lines, false);
        }

        var manifest = outcome.Manifest!;
        lines.Add((false,
            $"{cluster.Name}: committed set {manifest.SetId} ({Formatting.Bytes(manifest.StoredBytes)} stored, " +
            $"etcd revision {manifest.Etcd.Revision} from {manifest.Etcd.Node}, {manifest.Artifacts.Count} artifacts)"));
        foreach (var node in manifest.UnreachableNodes)
        {
            lines.Add((true, $"warning: cluster {cluster.Name}: node {node}: unreachable, its PKI and manifests are missing from set {manifest.SetId}"));
        }

        if (outcome.Pruned is { } pruned && pruned.RemovedSets + pruned.AbortedUploads > 0)
        {
            lines.Add((false, $"{cluster.Name}: pruned {pruned.RemovedSets} sets ({Formatting.Bytes(pruned.RemovedBytes)}), aborted {pruned.AbortedUploads} uploads"));
        }

        if (outcome.PruneError is { } pruneError)
        {
            lines.Add((true, $"warning: cluster {cluster.Name}: prune after the backup failed: {pruneError}; the new set is committed, run 'cluster-backup prune' to retry"));
        }

        return (lines, true);
    }
}
