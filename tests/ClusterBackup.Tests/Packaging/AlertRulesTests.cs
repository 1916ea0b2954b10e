using System.Text.Json;
using System.Text.RegularExpressions;
using ClusterBackup.Metrics;
using ClusterBackup.Rig;
using Prometheus;

namespace ClusterBackup.Tests.Packaging;

/// <summary>The shipped alert rules and dashboard: promtool's unit tests, and only metrics the agent exports.</summary>
public sealed partial class AlertRulesTests
{
    private static readonly string Packaging = Path.Combine(Tools.RepositoryRoot(), "packaging");

    [Fact]
    public async Task Promtool_rule_tests_pass()
    {
        var result = await Tools.RunAsync("promtool", ["test", "rules", "cluster-backup.rules.test.yml"], workingDirectory: Path.Combine(Packaging, "prometheus"));

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task Promtool_rule_tests_fail_when_an_expectation_is_broken()
    {
        var directory = Directory.CreateTempSubdirectory("cluster-backup-rules-").FullName;
        File.Copy(Path.Combine(Packaging, "prometheus", "cluster-backup.rules.yml"), Path.Combine(directory, "cluster-backup.rules.yml"));
        var tests = await File.ReadAllTextAsync(Path.Combine(Packaging, "prometheus", "cluster-backup.rules.test.yml"));
        await File.WriteAllTextAsync(Path.Combine(directory, "cluster-backup.rules.test.yml"),
            tests.Replace("- eval_time: 170m\n        alertname: ClusterBackupStale", "- eval_time: 150m\n        alertname: ClusterBackupStale", StringComparison.Ordinal));

        var result = await Tools.RunAsync("promtool", ["test", "rules", "cluster-backup.rules.test.yml"], workingDirectory: directory);

        Assert.NotEqual(0, result.ExitCode);
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task Rules_and_dashboard_use_only_metrics_the_agent_exports()
    {
        var metrics = new AgentMetrics(new CollectorRegistry(), "0.0.0-test");
        using var exposition = new MemoryStream();
        await metrics.WriteAsync(exposition, CancellationToken.None);
        var exported = MetricName().Matches(System.Text.Encoding.UTF8.GetString(exposition.ToArray()))
            .Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        var rules = await File.ReadAllTextAsync(Path.Combine(Packaging, "prometheus", "cluster-backup.rules.yml"));
        using var dashboard = await DashboardAsync();
        var expressions = Expressions(dashboard).Append(rules);

        var used = expressions.SelectMany(e => MetricName().Matches(e).Select(m => m.Value)).ToHashSet(StringComparer.Ordinal);

        Assert.NotEmpty(used);
        Assert.All(used, name => Assert.Contains(Regex.Replace(name, "_(bucket|count|sum)$", string.Empty), exported));
    }

    [Fact]
    public async Task The_dashboard_shows_each_set_that_cannot_be_trusted_and_its_panels_do_not_overlap()
    {
        using var dashboard = await DashboardAsync();
        var panels = dashboard.RootElement.GetProperty("panels").EnumerateArray().ToList();
        var expressions = Expressions(dashboard).ToList();

        // What pages someone about the sets themselves, beside staleness and failures.
        Assert.All(
            new[] { "cluster_backup_damaged_sets", "cluster_backup_refused_sets", "cluster_backup_pki_mismatches" },
            gauge => Assert.Contains(expressions, e => e.Contains(gauge, StringComparison.Ordinal)));

        Assert.Equal(panels.Count, panels.Select(p => p.GetProperty("id").GetInt32()).Distinct().Count());
        var cells = panels.SelectMany(p =>
        {
            var grid = p.GetProperty("gridPos");
            int Of(string name) => grid.GetProperty(name).GetInt32();
            return from x in Enumerable.Range(Of("x"), Of("w")) from y in Enumerable.Range(Of("y"), Of("h")) select (x, y);
        }).ToList();
        Assert.Equal(cells.Count, cells.Distinct().Count());
        Assert.All(cells, c => Assert.InRange(c.x, 0, 23));
    }

    private static async Task<JsonDocument> DashboardAsync() =>
        JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Packaging, "grafana", "cluster-backup.json")));

    /// <summary>The PromQL of every panel of the dashboard.</summary>
    private static IEnumerable<string> Expressions(JsonDocument dashboard) =>
        dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("expr").GetString()!));

    [GeneratedRegex(@"cluster_backup_[a-z_]+")]
    private static partial Regex MetricName();
}
