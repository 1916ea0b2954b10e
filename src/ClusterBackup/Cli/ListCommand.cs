using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterBackup.Cli;

/// <summary><c>cluster-backup list [--cluster NAME] [--json]</c>: the complete sets in storage.</summary>
internal static class ListCommand
{
    public static Command Create(CliHost host)
    {
        var cluster = new Option<string?>("--cluster") { Description = "Only this cluster's sets", HelpName = "NAME" };
        var json = new Option<bool>("--json") { Description = "One JSON document: every set with its manifest" };
        var command = new Command("list", """
            List the complete backup sets in storage (those with a manifest.json), oldest first, each
            with the certificate of its PKI or kubeconfigs that expires first (see 'certs').
            Incomplete sets (a run that failed or is still running) are never listed. A set whose
            manifest.json cannot be read is listed as DAMAGED (in the table, and on standard error
            with --json): it is not a backup to restore, and retention counts it for nothing.

            Examples: cluster-backup list
                      cluster-backup list --cluster prod-admin --json | jq '.[-1].setId'
            """)
        {
            cluster,
            json,
        };
        command.SetAction((parse, cancellationToken) => host.RunAsync(parse, async (services, ct) =>
        {
            var settings = services.GetRequiredService<AgentSettings>();
            var catalog = services.GetRequiredService<BackupCatalog>();
            var time = services.GetRequiredService<TimeProvider>();
            var name = parse.GetValue(cluster);
            var sets = new List<(string Cluster, StoredSet Set)>();
            foreach (var selected in CliHost.SelectClusters(settings, name is null ? null : [name]))
            {
                sets.AddRange((await catalog.ScanAsync(selected.Name, ct)).Where(s => s.State != SetState.Incomplete).Select(s => (selected.Name, s)));
            }

            foreach (var (damagedCluster, damaged) in sets.Where(s => s.Set.State == SetState.Damaged))
            {
                await host.Error.WriteLineAsync(
                    $"warning: cluster {damagedCluster}: set {damaged.Id} is DAMAGED: {catalog.DescribeManifest(damagedCluster, damaged.Id)} cannot be read: {damaged.Damage}");
            }

            if (parse.GetValue(json))
            {
                var manifests = sets.Where(s => s.Set.Complete).Select(s => s.Set.Manifest!).ToList();
                await host.Out.WriteLineAsync(JsonSerializer.Serialize(manifests, ListJsonContext.Default.ListSetManifest));
                return ExitCodes.Ok;
            }

            await host.Out.WriteLineAsync(Table(sets, time.GetUtcNow()));
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    private static string Table(IReadOnlyList<(string Cluster, StoredSet Set)> sets, DateTimeOffset now)
    {
        if (sets.Count == 0)
        {
            return "no complete backup sets";
        }

        string[] header = ["CLUSTER", "SET", "AGE", "SIZE", "REVISION", "KEYS", "NODES", "SOONEST CERTIFICATE"];
        var rows = sets.Select(entry => entry.Set.Manifest is not { } manifest
            ? [entry.Cluster, entry.Set.Id.ToString(), Formatting.Age(now - entry.Set.Id.StartedAt), Formatting.Bytes(entry.Set.StoredBytes), "DAMAGED: manifest.json cannot be read", string.Empty, string.Empty, string.Empty]
            : Row(new CatalogSet(entry.Set.Id, manifest), now)).ToList();
        var widths = header.Select((h, i) => rows.Max(r => r[i].Length) is var w && w > h.Length ? w : h.Length).ToArray();
        return string.Join('\n', new[] { header }.Concat(rows)
            .Select(r => string.Join("  ", r.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd()));
    }

    private static string[] Row(CatalogSet s, DateTimeOffset now) =>
        new[]
        {
            s.Manifest.Cluster,
            s.Manifest.SetId,
            Formatting.Age(now - s.Manifest.StartedAt),
            Formatting.Bytes(s.Manifest.StoredBytes),
            s.Manifest.Etcd.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture),
            s.Manifest.Etcd.KeyCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
            string.Join(",", s.Manifest.Artifacts.Where(a => a.Kind == ArtifactKinds.Pki).Select(a => a.Node))
                + (s.Manifest.UnreachableNodes.Count > 0 ? $" (missing: {string.Join(",", s.Manifest.UnreachableNodes)})" : string.Empty),
            s.Manifest.Certificates.MinBy(c => c.NotAfter) is { } soonest
                ? $"{soonest.NotAfter:yyyy-MM-dd} {soonest.Name}@{soonest.Node} ({Certificates.CertificateExpiry.Residual(soonest.NotAfter, now)})"
                : "-",
        };
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, IgnoreReadOnlyProperties = true)]
[JsonSerializable(typeof(List<SetManifest>))]
internal sealed partial class ListJsonContext : JsonSerializerContext;
