using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterBackup.Catalog;
using ClusterBackup.Certificates;
using ClusterBackup.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterBackup.Cli;

/// <summary><c>cluster-backup certs [--cluster NAME] [--json]</c>: certificate expiry from the newest set, with no SSH.</summary>
internal static class CertsCommand
{
    public static Command Create(CliHost host)
    {
        var cluster = new Option<string?>("--cluster") { Description = "Only this cluster", HelpName = "NAME" };
        var json = new Option<bool>("--json") { Description = "One JSON array: every certificate with its cluster, set and status" };
        var allowUnsigned = AllowUnsignedOption.Create();
        var command = new Command("certs", """
            Show when each certificate of the control planes expires, as kubeadm certs check-expiration
            does, from the manifest of the newest complete set that a trusted key signed: every *.crt of
            each node's PKI and the embedded certificates of its kubeconfigs, read while they were backed
            up. A newer set whose signature is missing, untrusted or wrong is named, and not reported
            from. It contacts no node. Soonest first. Then what the backup's PKI check found: a key
            that does not match its certificate, a certificate not signed by the CA its issuer names,
            a kubeconfig that does not trust ca.crt or whose key does not match its certificate.
            Exit status: 0 if none expires within Certificates:WarnDays (default 30) and the PKI
            holds together; 1 if one does or has expired, the PKI check found a mismatch, a newer set
            was refused, or a cluster has no set that records its certificates; 78 on a configuration
            error.

            Example: cluster-backup certs --cluster prod-admin
            """)
        {
            cluster,
            json,
            allowUnsigned,
        };
        command.SetAction((parse, cancellationToken) => host.RunAsync(parse, async (services, ct) =>
        {
            var settings = services.GetRequiredService<AgentSettings>();
            var catalog = services.GetRequiredService<BackupCatalog>();
            var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
            var warnDays = settings.Certificates.WarnDays;
            var name = parse.GetValue(cluster);
            var policy = settings.Signing.ReadPolicy(parse.GetValue(allowUnsigned));
            var rows = new List<CertificateRow>();
            var mismatches = new List<string>();
            var problems = 0; // refused sets, and clusters with nothing to report
            foreach (var selected in CliHost.SelectClusters(settings, name is null ? null : [name]))
            {
                var scan = await catalog.ScanAsync(selected.Name, ct);
                var signed = await catalog.NewestSignedAsync(scan, policy, cancellationToken: ct);
                var newest = signed.Newest?.Manifest;
                foreach (var refused in signed.Refused)
                {
                    problems++;
                    await host.Error.WriteLineAsync($"error: {refused.Reason}; its certificates are not reported");
                }

                if (signed.Unsigned)
                {
                    await host.Error.WriteLineAsync($"warning: cluster {selected.Name}: set {newest!.SetId} is not signed: it is read as it is, unauthenticated");
                }

                if (newest is null || newest.Certificates.Count == 0)
                {
                    problems++;
                    await host.Error.WriteLineAsync(newest is not null
                        ? $"error: cluster {selected.Name}: set {newest.SetId} records no certificates (taken by agent {newest.AgentVersion}); the next backup records them"
                        : signed.Refused.Count > 0
                            ? $"error: cluster {selected.Name}: no complete set is signed by a trusted key: run 'cluster-backup backup --cluster {selected.Name}'"
                            : $"error: cluster {selected.Name}: no complete backup set: run 'cluster-backup backup --cluster {selected.Name}'");
                    continue;
                }

                if (signed.Refused.Count > 0)
                {
                    await host.Error.WriteLineAsync($"cluster {selected.Name}: certificates from set {newest.SetId}, the newest one a trusted key signed");
                }

                rows.AddRange(CertificateExpiry.Sorted(newest.Certificates).Select(c => CertificateRow.Of(selected.Name, newest.SetId, c, now, warnDays)));
                mismatches.AddRange(newest.PkiMismatches.Select(m => $"warning: cluster {selected.Name}: node {m.Node}: {m} (set {newest.SetId})"));
            }

            rows = rows.OrderBy(r => r.NotAfter).ThenBy(r => r.Cluster, StringComparer.Ordinal).ToList();
            if (parse.GetValue(json))
            {
                await host.Out.WriteLineAsync(JsonSerializer.Serialize(rows, CertsJsonContext.Default.ListCertificateRow));
            }
            else if (rows.Count > 0)
            {
                await host.Out.WriteLineAsync(Table(rows));
            }

            var attention = rows.Count(r => r.Status != CertificateRow.Ok);
            if (attention > 0)
            {
                await host.Error.WriteLineAsync($"warning: {attention} certificate(s) expire within {warnDays} days (Certificates:WarnDays) or have expired: renew them (kubeadm certs renew), then back up again");
            }

            foreach (var mismatch in mismatches)
            {
                await host.Error.WriteLineAsync(mismatch);
            }

            if (mismatches.Count > 0)
            {
                await host.Error.WriteLineAsync($"warning: {mismatches.Count} file(s) of the PKI do not hold together: a control plane rebuilt from these sets would not start or not be reached; fix them on the node (see the README's \"Certificates\"), then back up again");
            }

            return attention + problems + mismatches.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        }, cancellationToken));
        return command;
    }

    private static string Table(IReadOnlyList<CertificateRow> rows)
    {
        string[] header = ["CLUSTER", "CERTIFICATE", "NODE", "EXPIRES", "RESIDUAL", "CA", "STATUS"];
        var cells = rows.Select(r => new[]
        {
            r.Cluster, r.Certificate, r.Node, r.NotAfter.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture), r.Residual, r.IsCa ? "yes" : "no", r.Status,
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, cells.Max(c => c[i].Length))).ToArray();
        return string.Join('\n', new[] { header }.Concat(cells).Select(c => string.Join("  ", c.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd()));
    }
}

/// <summary>One line of <c>certs</c>: a certificate of the newest set, and what it needs.</summary>
internal sealed record CertificateRow(
    string Cluster, string SetId, string Node, string Certificate, string File, string? Field, string Subject, string Issuer, string Serial,
    DateTimeOffset NotAfter, bool IsCa, string Residual, string Status)
{
    public const string Ok = "ok";
    public const string Expiring = "EXPIRING";
    public const string Expired = "EXPIRED";

    public static CertificateRow Of(string cluster, string setId, CertificateRecord c, DateTimeOffset now, int warnDays) => new(
        cluster, setId, c.Node, c.Name, c.File, c.Field, c.Subject, c.Issuer, c.Serial, c.NotAfter, c.IsCa,
        CertificateExpiry.Residual(c.NotAfter, now),
        c.NotAfter <= now ? Expired : CertificateExpiry.NeedsAttention(c, now, warnDays) ? Expiring : Ok);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(List<CertificateRow>))]
internal sealed partial class CertsJsonContext : JsonSerializerContext;
