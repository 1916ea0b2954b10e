using System.CommandLine;
using System.Globalization;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Retention;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterBackup.Cli;

/// <summary><c>cluster-backup prune [--cluster NAME] [--dry-run]</c>: apply each cluster's retention policy.</summary>
internal static class PruneCommand
{
    public static Command Create(CliHost host)
    {
        var cluster = new Option<string?>("--cluster") { Description = "Only this cluster", HelpName = "NAME" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the plan; remove nothing" };
        var command = new Command("prune", """
            Apply each cluster's Retention policy: print every set with its time (in the cluster's
            TimeZone), size, keep or remove, and the reasons; then remove what the policy does not
            keep (the manifest first, so a half-removed set is never listed). The newest complete set
            is never removed. Sets without a manifest and open uploads are removed once older than
            Retention:IncompleteGraceHours. A DAMAGED set (its manifest.json cannot be read) is counted
            by no rule and never removed: inspect it, then remove it by hand. The newest complete set
            means the newest readable one. Sets whose signature is refused (forged, or signed by a key
            not trusted) count for the rules, but cost no signed set its place: a set the rules keep
            among the sets whose signature is accepted is kept. prune reads the signature of every
            set it keeps.
            prune also runs after every successful backup. Both then
            store the kept sets' manifests in one object ({Prefix}/{Cluster}/manifests.cache.zst),
            which a scan without a local cache reads instead of each manifest.
            Exit status: 0 ok, 1 a removal failed, 78 configuration error.

            Examples: cluster-backup prune --dry-run
                      cluster-backup prune --cluster prod-admin
            """)
        {
            cluster,
            dryRun,
        };
        command.SetAction((parse, cancellationToken) => host.RunAsync(parse, async (services, ct) =>
        {
            var settings = services.GetRequiredService<AgentSettings>();
            var pruner = services.GetRequiredService<PruneService>();
            var name = parse.GetValue(cluster);
            var dry = parse.GetValue(dryRun);
            foreach (var selected in CliHost.SelectClusters(settings, name is null ? null : [name]))
            {
                var plan = await pruner.PlanAsync(selected, ct);
                await host.Out.WriteLineAsync(Render(plan));
                if (dry)
                {
                    await host.Out.WriteLineAsync(
                        $"dry run: would remove {plan.Removed.Count()} sets ({Formatting.Bytes(plan.Removed.Sum(s => s.Set.StoredBytes))}) and abort {plan.StaleUploads.Count} uploads\n");
                    continue;
                }

                var result = await pruner.ApplyAsync(plan, ct);
                await host.Out.WriteLineAsync($"removed {result.RemovedSets} sets ({Formatting.Bytes(result.RemovedBytes)}), aborted {result.AbortedUploads} uploads\n");
            }

            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    public static string Render(PrunePlan plan)
    {
        var cluster = plan.Cluster;
        var lines = new List<string>
        {
            $"cluster {cluster.Name}: policy {cluster.Retention}, time zone {cluster.TimeZone.Id}; " +
            $"{plan.Sets.Count(s => s.Set.Complete)} complete sets, {plan.Sets.Count(s => s.Set.State == SetState.Incomplete)} incomplete" +
            (plan.Sets.Count(s => s.Set.State == SetState.Damaged) is > 0 and var damaged ? $", {damaged} DAMAGED" : string.Empty),
        };
        string[] header = ["SET", "TIME", "SIZE", "ACTION", "REASONS"];
        var rows = plan.Sets.Select(p => new[]
        {
            p.Set.Id + p.Set.State switch { SetState.Incomplete => " (incomplete)", SetState.Damaged => " (DAMAGED)", _ => string.Empty },
            TimeZoneInfo.ConvertTime(p.Set.Id.StartedAt, cluster.TimeZone).ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
            Formatting.Bytes(p.Set.StoredBytes),
            p.Keep ? "keep" : "remove",
            string.Join(", ", p.Reasons),
        }).ToList();
        if (rows.Count > 0)
        {
            var widths = header.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length))).ToArray();
            lines.AddRange(new[] { header }.Concat(rows).Select(r => string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd()));
        }

        lines.AddRange(plan.StaleUploads.Select(u =>
            $"open upload of {u.Key} started {u.Initiated.ToString("u", CultureInfo.InvariantCulture)}: abort (older than {cluster.IncompleteGrace.TotalHours:0}h)"));
        if (plan.UploadsNote is not null)
        {
            lines.Add(plan.UploadsNote);
        }

        return string.Join('\n', lines);
    }
}
