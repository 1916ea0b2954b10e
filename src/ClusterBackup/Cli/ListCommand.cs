using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Signing;
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
            Each set's signature is checked against the trusted keys, as restore checks it: the
            SIGNATURE column says 'signed', 'unsigned' (read only with --allow-unsigned) or
            'REFUSED' (wrong or untrusted: the set may have been forged), and each refused set is
            named on standard error, also with --json.

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
            var policy = new SignaturePolicy(settings.Signing.Trusted, AllowUnsigned: false); // to tell unsigned sets apart
            var sets = new List<(string Cluster, StoredSet Set)>();
            var signatures = new Dictionary<(string Cluster, SetId Id), SetRefusedException?>();
            foreach (var selected in CliHost.SelectClusters(settings, name is null ? null : [name]))
            {
                var scan = await catalog.ScanAsync(selected.Name, ct);
                sets.AddRange(scan.Where(s => s.State != SetState.Incomplete).Select(s => (selected.Name, s)));
                if (policy.Trusted is null)
                {
                    continue; // nothing to check them against: said once below
                }

                var checks = await catalog.CheckSignaturesAsync(selected.Name, scan, scan.Where(s => s.Complete).Select(s => s.Id), policy, ct);
                foreach (var (id, verdict) in checks.Verdicts)
                {
                    signatures[(selected.Name, id)] = verdict;
                }
            }

            if (policy.Trusted is null && !settings.Signing.Disabled && sets.Any(s => s.Set.Complete && s.Set.SignatureListed))
            {
                await host.Error.WriteLineAsync(
                    "warning: no key is trusted (set Signing:AllowedSignersFile or Signing:KeyFile): signatures are not checked, and verify, download and restore refuse every signed set");
            }

            await WarnAsync(host, settings.Signing.Disabled, signatures);

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

            await host.Out.WriteLineAsync(Table(sets, signatures, time.GetUtcNow()));
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    /// <summary>Names each refused set on standard error, and counts the unsigned ones (unless signing is disabled).</summary>
    private static async Task WarnAsync(CliHost host, bool signingDisabled, IReadOnlyDictionary<(string Cluster, SetId Id), SetRefusedException?> signatures)
    {
        foreach (var (_, refusal) in signatures.OrderBy(s => s.Key.Cluster, StringComparer.Ordinal).ThenBy(s => s.Key.Id))
        {
            if (refusal is not null && refusal.Problem != SignatureProblem.NotSigned)
            {
                await host.Error.WriteLineAsync($"warning: {refusal.Reason}");
            }
        }

        if (signingDisabled)
        {
            return;
        }

        foreach (var group in signatures.Where(s => s.Value?.Problem == SignatureProblem.NotSigned).GroupBy(s => s.Key.Cluster))
        {
            await host.Error.WriteLineAsync(
                $"warning: cluster {group.Key}: {group.Count()} set(s) not signed (written before signing existed): verify, download and restore read them only with --allow-unsigned");
        }
    }

    private static string Table(
        IReadOnlyList<(string Cluster, StoredSet Set)> sets, IReadOnlyDictionary<(string Cluster, SetId Id), SetRefusedException?> signatures, DateTimeOffset now)
    {
        if (sets.Count == 0)
        {
            return "no complete backup sets";
        }

        string[] header = ["CLUSTER", "SET", "AGE", "SIZE", "REVISION", "KEYS", "NODES", "SOONEST CERTIFICATE", "SIGNATURE"];
        var rows = sets.Select(string[] (entry) => entry.Set.Manifest is not { } manifest
            ? [entry.Cluster, entry.Set.Id.ToString(), Formatting.Age(now - entry.Set.Id.StartedAt), Formatting.Bytes(entry.Set.StoredBytes), "DAMAGED: manifest.json cannot be read", string.Empty, string.Empty, string.Empty, string.Empty]
            : [.. Row(new CatalogSet(entry.Set.Id, manifest), now), Signature(entry.Set, signatures.TryGetValue((entry.Cluster, entry.Set.Id), out var refusal), refusal)]).ToList();
        var widths = header.Select((h, i) => rows.Max(r => r[i].Length) is var w && w > h.Length ? w : h.Length).ToArray();
        return string.Join('\n', new[] { header }.Concat(rows)
            .Select(r => string.Join("  ", r.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd()));
    }

    /// <summary>
    /// What the SIGNATURE column says of a set: as restore sees it when checked (refusal null:
    /// accepted); unchecked (no key is trusted) when it has a signature, else unsigned.
    /// </summary>
    private static string Signature(StoredSet set, bool isChecked, SetRefusedException? refusal) =>
        !isChecked ? (set.SignatureListed ? "unchecked" : "unsigned")
        : refusal?.Problem switch
        {
            null => "signed",
            SignatureProblem.NotSigned => "unsigned",
            _ => "REFUSED",
        };

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
