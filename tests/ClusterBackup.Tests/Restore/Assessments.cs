using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Restore;

namespace ClusterBackup.Tests.Restore;

/// <summary>Assessments of clusters cp1..cpN with default paths, as the planner and executor tests start from.</summary>
internal static class Assessments
{
    public const string Stamp = "20261127T010203Z";
    public static readonly SetId Set = new(new DateTimeOffset(2026, 11, 26, 22, 14, 8, TimeSpan.Zero));

    private static ControlPlaneSettings Node(int i) => new(
        $"cp{i}", $"10.0.0.{i}",
        new SshOptions(),
        new EtcdOptions { ClientPort = 2379 },
        new PathOptions(),
        new RestoreOptions());

    private static StaticPodFlags Flags(int i, int members) => new(
        $"cp{i}",
        string.Join(',', Enumerable.Range(1, members).Select(m => $"cp{m}=https://10.0.0.{m}:2380")),
        $"https://10.0.0.{i}:2380");

    public static MemberAssessment Member(int i, int members, bool healthy, bool reachable = true) =>
        new($"cp{i}", reachable, healthy, healthy ? "endpoint health ok" : "connection refused") { Flags = reachable ? Flags(i, members) : null };

    public static RestoreAssessment Of(params MemberAssessment[] members)
    {
        var nodes = Enumerable.Range(1, members.Length).Select(Node).ToList();
        var artifacts = new List<ArtifactRecord> { Artifact(ArtifactKinds.EtcdSnapshot, null) };
        artifacts.AddRange(nodes.Select(n => Artifact(ArtifactKinds.Pki, n.Name)));
        artifacts.AddRange(nodes.Select(n => Artifact(ArtifactKinds.Manifests, n.Name)));
        var manifest = new SetManifest
        {
            Cluster = "prod", SetId = Set.ToString(), StartedAt = Set.StartedAt, CompletedAt = Set.StartedAt.AddSeconds(3), AgentVersion = "test",
            Etcd = new EtcdRecord { Node = "cp1", Mode = "tunnel", MemberId = "1", ClusterId = "2", Revision = 42, KeyCount = 7, Version = "3.5", DbSizeBytes = 1 },
            Artifacts = artifacts,
        };
        var cluster = new ClusterSettings("prod", null, null, TimeZoneInfo.Utc, nodes, new RetentionPolicy(Last: 1), TimeSpan.FromHours(1), new RetryPolicy(0, TimeSpan.FromMinutes(5)));
        return new RestoreAssessment(cluster, new CatalogSet(Set, manifest), members);
    }

    private static ArtifactRecord Artifact(string kind, string? node) => new()
    {
        Name = node is null ? "etcd.db.zst.age" : $"{kind}-{node}.tar.zst.age", Kind = kind, Node = node,
        PlainSize = 1, PlainSha256 = "0", StoredSize = 1, StoredSha256 = "0", Compression = "zstd",
    };
}
