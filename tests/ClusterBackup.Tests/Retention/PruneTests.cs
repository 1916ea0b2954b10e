using System.Text.Json;
using System.Text.Json.Nodes;
using Amazon.S3.Model;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Retention;
using ClusterBackup.Rig;
using ClusterBackup.Storage;
using ClusterBackup.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace ClusterBackup.Tests.Retention;

/// <summary>Prune against real storage: moto_server and the filesystem store.</summary>
[Collection(RigCollection.Name)]
public sealed class PruneTests(RigFixture fixture) : IDisposable
{
    private readonly LocalRig _rig = fixture.Rig;
    private readonly string _work = Directory.CreateTempSubdirectory("cluster-backup-prune-").FullName;

    public static TheoryData<string> Stores => ["moto", "filesystem"];

    private JsonObject Config(string storage, string cluster, JsonObject retention)
    {
        var config = _rig.Config(storage == "filesystem" ? Path.Combine(_work, "store") : storage, cluster, "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Clusters"]![0]!["Retention"] = retention;
        return config;
    }

    private static async Task<List<string>> SetIdsAsync(JsonObject config, string cluster)
    {
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        return JsonSerializer.Deserialize<JsonElement>(list.Output).EnumerateArray().Select(s => s.GetProperty("setId").GetString()!).ToList();
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Three_backups_with_KeepLast_2_leave_the_two_newest(string storage)
    {
        var cluster = $"keep-last-{storage}";
        var config = Config(storage, cluster, new JsonObject { ["KeepLast"] = 2 });
        var committed = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var backup = await CliRunner.RunAsync(config, "backup");
            Assert.True(backup.ExitCode == 0, backup.ToString());
            committed.Add(backup.Output.Split("committed set ")[1][..16]);
        }

        Assert.Equal(committed.Skip(1), await SetIdsAsync(config, cluster));
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Dry_run_prints_the_plan_and_changes_nothing(string storage)
    {
        var cluster = $"dry-run-{storage}";
        var keepAll = Config(storage, cluster, new JsonObject { ["KeepLast"] = 10 });
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(0, (await CliRunner.RunAsync(keepAll, "backup")).ExitCode);
        }

        var before = await SetIdsAsync(keepAll, cluster);
        var keepOne = Config(storage, cluster, new JsonObject { ["KeepLast"] = 1 });

        var dry = await CliRunner.RunAsync(keepOne, "prune", "--dry-run");

        Assert.True(dry.ExitCode == 0, dry.ToString());
        dry.AssertOutput($"cluster {cluster}: policy last 1, time zone UTC; 3 complete sets, 0 incomplete");
        dry.AssertOutput($"{before[2]}  ");
        Assert.Matches($@"(?m)^{before[2]} .* keep\s+last set$", dry.Output);
        Assert.Matches($@"(?m)^{before[0]} .* remove$", dry.Output);
        dry.AssertOutput("dry run: would remove 2 sets");
        Assert.Equal(before, await SetIdsAsync(keepAll, cluster));

        var real = await CliRunner.RunAsync(keepOne, "prune");

        Assert.True(real.ExitCode == 0, real.ToString());
        real.AssertOutput("removed 2 sets");
        Assert.Equal([before[2]], await SetIdsAsync(keepAll, cluster));
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task A_catalog_of_2500_sets_lists_and_plans_correctly(string storage)
    {
        var cluster = $"big-{storage}";
        var config = Config(storage, cluster, new JsonObject { ["KeepLast"] = 0, ["KeepDaily"] = 7, ["KeepWeekly"] = 4, ["KeepMonthly"] = 6 });
        await using var services = await ServicesAsync(config, TimeProvider.System);
        var store = services.GetRequiredService<IBackupStore>();
        var catalog = services.GetRequiredService<BackupCatalog>();
        var start = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var ids = Enumerable.Range(0, 2500).Select(i => SetId.At(start.AddHours(3 * i))).ToList();
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (id, ct) =>
        {
            await using var upload = await store.StartUploadAsync(catalog.ArtifactKey(cluster, id, SetManifest.FileName), ct);
            await upload.Content.WriteAsync(SyntheticManifest(cluster, id).ToJson(), ct);
            await upload.CommitAsync(ct);
        });

        Assert.Equal(ids.Select(i => i.ToString()), await SetIdsAsync(config, cluster));
        var settings = services.GetRequiredService<AgentSettings>().Clusters[0];
        var plan = await services.GetRequiredService<PruneService>().PlanAsync(settings);
        var expected = RetentionPlanner.Plan(ids, settings.Retention, settings.TimeZone).Where(d => d.Keep).Select(d => d.Id);
        Assert.Equal(expected, plan.Sets.Where(s => s.Keep).Select(s => s.Set.Id));
        Assert.Equal(2500, plan.Sets.Count);
        Assert.InRange(plan.Sets.Count(s => s.Keep), 13, 17);
    }

    [Fact]
    public async Task A_stale_multipart_upload_and_incomplete_set_are_removed_and_fresh_ones_left_alone()
    {
        const string cluster = "stale-uploads";
        var config = Config("moto", cluster, new JsonObject { ["KeepLast"] = 5 });
        Assert.Equal(0, (await CliRunner.RunAsync(config, "backup")).ExitCode);
        var incompleteKey = $"backups/{cluster}/20250101T000000Z/etcd.db.zst.age";
        var uploadKey = $"backups/{cluster}/20250102T000000Z/etcd.db.zst.age";
        using (var client = _rig.Moto.CreateClient())
        {
            await client.PutObjectAsync(new PutObjectRequest { BucketName = LocalRig.Bucket, Key = incompleteKey, ContentBody = "partial" });
            await client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = LocalRig.Bucket, Key = uploadKey });
        }

        // moto reports one fixed Initiated time for every upload, so "now" is set relative to what it reports.
        IncompleteUpload reported;
        await using (var services = await ServicesAsync(config, TimeProvider.System))
        {
            reported = await ((IIncompleteUploads)services.GetRequiredService<IBackupStore>()).ListIncompleteUploadsAsync($"backups/{cluster}/").SingleAsync();
        }

        // An hour after it started: a run may still be writing it.
        var (plan, result) = await PruneAtAsync(config, reported.Initiated.AddHours(1));
        Assert.Empty(plan.StaleUploads);
        Assert.Equal(0, result.AbortedUploads);
        Assert.Single(await OpenUploadsAsync(cluster));

        // A day and more later: stale, aborted.
        (plan, result) = await PruneAtAsync(config, reported.Initiated.AddHours(25));
        Assert.Equal(uploadKey, Assert.Single(plan.StaleUploads).Key);
        Assert.Equal(1, result.AbortedUploads);
        Assert.Empty(await OpenUploadsAsync(cluster));

        // The set without a manifest: kept while fresh, removed once older than the grace period.
        (plan, result) = await PruneAtAsync(config, DateTimeOffset.UtcNow.AddHours(1));
        Assert.Equal(0, result.RemovedSets);
        Assert.Contains(plan.Sets, s => !s.Set.Complete && s.Keep);
        (plan, result) = await PruneAtAsync(config, DateTimeOffset.UtcNow.AddHours(25));
        Assert.Equal("20250101T000000Z", Assert.Single(plan.Removed).Set.Id.ToString());
        Assert.Equal(1, result.RemovedSets);
        Assert.Single(await SetIdsAsync(config, cluster));
        await using var check = await ServicesAsync(config, TimeProvider.System);
        Assert.DoesNotContain(await check.GetRequiredService<BackupCatalog>().ScanAsync(cluster), s => !s.Complete);
    }

    [Fact]
    public async Task The_open_upload_of_a_run_in_progress_is_never_aborted_whatever_date_the_server_gives_it()
    {
        // moto dates every multipart upload in 2010: by that date alone, prune (another run's, the
        // daemon's) would abort an upload in flight. The set's fresh reservation marker protects it.
        const string cluster = "prune-in-progress";
        var config = Config("moto", cluster, new JsonObject { ["KeepLast"] = 1 });
        var set = SetId.At(DateTimeOffset.UtcNow).ToString();
        var uploadKey = $"backups/{cluster}/{set}/etcd.db.zst.age";
        using (var client = _rig.Moto.CreateClient())
        {
            await client.PutObjectAsync(new PutObjectRequest { BucketName = LocalRig.Bucket, Key = $"backups/{cluster}/{set}/.reservation-0123456789abcdef", ContentBody = "{}" });
            await client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = LocalRig.Bucket, Key = uploadKey });
        }

        var (plan, result) = await PruneAtAsync(config, DateTimeOffset.UtcNow);

        Assert.Empty(plan.StaleUploads);
        Assert.Equal(0, result.AbortedUploads + result.RemovedSets);
        Assert.Equal([uploadKey], await OpenUploadsAsync(cluster));
    }

    private static async Task<(PrunePlan Plan, PruneResult Result)> PruneAtAsync(JsonObject config, DateTimeOffset now)
    {
        await using var services = await ServicesAsync(config, new FakeTimeProvider(now));
        var pruner = services.GetRequiredService<PruneService>();
        var plan = await pruner.PlanAsync(services.GetRequiredService<AgentSettings>().Clusters[0]);
        return (plan, await pruner.ApplyAsync(plan));
    }

    [Fact]
    public async Task On_a_server_without_ListMultipartUploads_sets_are_still_pruned_and_the_gap_is_said()
    {
        var config = _rig.Config("s3rver", "s3rver-prune", "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Defaults"]!["Retention"] = new JsonObject { ["KeepLast"] = 1 };
        Assert.Equal(0, (await CliRunner.RunAsync(config, "backup")).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync(config, "backup")).ExitCode);

        var prune = await CliRunner.RunAsync(config, "prune", "--dry-run");

        Assert.True(prune.ExitCode == 0, prune.ToString());
        prune.AssertOutput("open uploads not checked: cannot list the open multipart uploads under");
        Assert.Single(await SetIdsAsync(config, "s3rver-prune"));
    }

    [Fact]
    public async Task The_filesystem_store_removes_stale_temp_files_of_uploads_that_never_finished()
    {
        var root = Path.Combine(_work, "fs");
        var store = new FileSystemBackupStore(root);
        var upload = await store.StartUploadAsync("backups/c/20250101T000000Z/etcd.db.zst.age");
        await upload.Content.WriteAsync(new byte[10]); // never committed nor disposed: the process "died"

        var listed = new List<IncompleteUpload>();
        await foreach (var u in store.ListIncompleteUploadsAsync("backups/c/"))
        {
            listed.Add(u);
        }

        var found = Assert.Single(listed);
        Assert.Equal("backups/c/20250101T000000Z/etcd.db.zst.age", found.Key);
        await upload.Content.DisposeAsync();
        await store.AbortAsync(found);
        Assert.Empty(Directory.GetFiles(root, "*", SearchOption.AllDirectories));
    }

    private Task<IReadOnlyList<string>> OpenUploadsAsync(string cluster) => _rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, $"backups/{cluster}/");

    private static async Task<ServiceProvider> ServicesAsync(JsonObject config, TimeProvider time)
    {
        var settings = ConfigurationLoader.Load(await CliRunner.WriteConfigAsync(config));
        return new ServiceCollection()
            .AddSingleton(typeof(Microsoft.Extensions.Logging.ILogger<>), typeof(NullLogger<>))
            .AddAgent(settings)
            .AddSingleton(time)
            .BuildServiceProvider();
    }

    private static SetManifest SyntheticManifest(string cluster, SetId id) => new()
    {
        Cluster = cluster,
        SetId = id.ToString(),
        StartedAt = id.StartedAt,
        CompletedAt = id.StartedAt.AddSeconds(5),
        AgentVersion = "test",
        Etcd = new EtcdRecord { Node = "cp1", Mode = "tunnel", MemberId = "1", ClusterId = "2", Revision = 1, KeyCount = 1, Version = "3.4", DbSizeBytes = 1 },
        Artifacts = [],
    };

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
