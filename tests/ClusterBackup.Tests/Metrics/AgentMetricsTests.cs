using System.Globalization;
using System.Text;
using ClusterBackup.Catalog;
using ClusterBackup.Metrics;
using Prometheus;

namespace ClusterBackup.Tests.Metrics;

public sealed class AgentMetricsTests
{
    private static readonly SetManifest Set = new()
    {
        Cluster = "prod",
        SetId = "20261126T010000Z",
        StartedAt = new DateTimeOffset(2026, 11, 26, 1, 0, 0, TimeSpan.Zero),
        CompletedAt = new DateTimeOffset(2026, 11, 26, 1, 0, 5, TimeSpan.Zero),
        AgentVersion = "1.2.3",
        Etcd = new EtcdRecord { Node = "cp1", Mode = "tunnel", MemberId = "1", ClusterId = "2", Revision = 42, KeyCount = 7, Version = "3.4.23", DbSizeBytes = 100 },
        Artifacts =
        [
            new ArtifactRecord { Name = "etcd.db.zst.age", Kind = ArtifactKinds.EtcdSnapshot, Node = "cp1", PlainSize = 1, PlainSha256 = "a", StoredSize = 1000, StoredSha256 = "b", Compression = "zstd" },
            new ArtifactRecord { Name = "pki-cp1.tar.zst.age", Kind = ArtifactKinds.Pki, Node = "cp1", PlainSize = 1, PlainSha256 = "a", StoredSize = 200, StoredSha256 = "b", Compression = "zstd" },
        ],
    };

    [Fact]
    public async Task Failures_count_up_and_a_success_resets_them()
    {
        var metrics = new AgentMetrics(new CollectorRegistry(), "1.2.3");

        metrics.RecordFailure("prod", TimeSpan.FromSeconds(1));
        metrics.RecordFailure("prod", TimeSpan.FromSeconds(1));
        Assert.Equal(2, await ValueAsync(metrics, "cluster_backup_consecutive_failures{cluster=\"prod\"}"));
        Assert.Equal(2, await ValueAsync(metrics, "cluster_backup_runs_total{cluster=\"prod\",result=\"failure\"}"));

        metrics.RecordSuccess("prod", Set, TimeSpan.FromSeconds(5));

        Assert.Equal(0, await ValueAsync(metrics, "cluster_backup_consecutive_failures{cluster=\"prod\"}"));
        Assert.Equal(1, await ValueAsync(metrics, "cluster_backup_runs_total{cluster=\"prod\",result=\"success\"}"));
        Assert.Equal(Set.StartedAt.ToUnixTimeSeconds(), await ValueAsync(metrics, "cluster_backup_last_success_timestamp_seconds{cluster=\"prod\"}"));
        Assert.Equal(42, await ValueAsync(metrics, "cluster_backup_etcd_revision{cluster=\"prod\"}"));
        Assert.Equal(1000, await ValueAsync(metrics, "cluster_backup_last_size_bytes{cluster=\"prod\",artifact=\"etcd-snapshot\"}"));
        Assert.Equal(200, await ValueAsync(metrics, "cluster_backup_last_size_bytes{cluster=\"prod\",artifact=\"pki-cp1\"}"));
    }

    [Fact]
    public async Task Seeding_shows_the_newest_stored_set_and_pruning_sets_the_count()
    {
        var metrics = new AgentMetrics(new CollectorRegistry(), "1.2.3");

        metrics.Seed("prod", 5, 1, 2, Set);
        Assert.Equal(5, await ValueAsync(metrics, "cluster_backup_sets{cluster=\"prod\"}"));
        Assert.Equal(1, await ValueAsync(metrics, "cluster_backup_damaged_sets{cluster=\"prod\"}"));
        Assert.Equal(2, await ValueAsync(metrics, "cluster_backup_refused_sets{cluster=\"prod\"}"));
        Assert.Equal(Set.StartedAt.ToUnixTimeSeconds(), await ValueAsync(metrics, "cluster_backup_last_success_timestamp_seconds{cluster=\"prod\"}"));

        metrics.RecordPruned("prod", 2, 3, 0, 1);
        Assert.Equal(3, await ValueAsync(metrics, "cluster_backup_sets{cluster=\"prod\"}"));
        Assert.Equal(0, await ValueAsync(metrics, "cluster_backup_damaged_sets{cluster=\"prod\"}"));
        Assert.Equal(1, await ValueAsync(metrics, "cluster_backup_refused_sets{cluster=\"prod\"}"));
        Assert.Equal(2, await ValueAsync(metrics, "cluster_backup_pruned_sets_total{cluster=\"prod\"}"));
        Assert.Equal(1, await ValueAsync(metrics, "cluster_backup_build_info{version=\"1.2.3\"}"));
    }

    private static async Task<double?> ValueAsync(AgentMetrics metrics, string series)
    {
        using var output = new MemoryStream();
        await metrics.WriteAsync(output, CancellationToken.None);
        var line = Encoding.UTF8.GetString(output.ToArray()).Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        return line is null ? null : double.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
    }
}
