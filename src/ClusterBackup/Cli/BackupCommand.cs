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
                }
            }

            return failed == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        }, cancellationToken));
        return command;
    }
}
