using System.Text.Json;
using ClusterBackup.Catalog;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Catalog;

/// <summary>
/// Scans against moto_server and s3rver read each manifest from storage once; what they show is
/// always what storage holds, whatever the cache holds. The aws CLI is the independent reader.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class ManifestCacheScanTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    public static TheoryData<string> Stores => ["moto", "s3rver"];

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task A_second_list_reads_no_manifest_from_storage_and_a_changed_or_tampered_one_is_read_again(string storage)
    {
        var cluster = $"manifest-cache-{storage}";
        var (s3, config) = Store(storage, cluster);
        string[] sets = [await CliRunner.CommittedSetAsync(config), await CliRunner.CommittedSetAsync(config)];
        var file = TestEnvironment.ManifestCache(cluster);
        File.Delete(file); // the backups' retention scans filled it
        await CheckAwsAsync(s3, "s3", "rm", $"s3://{LocalRig.Bucket}/backups/{cluster}/{StoredManifestCache.Name}"); // this test is the local cache's

        var first = await ListAsync(config, cluster, "--verbose");
        first.AssertError($"Scanned cluster {cluster}: 2 sets, 0 manifests from the local cache, 2 read from storage");
        var etags = new Dictionary<string, string>();
        foreach (var set in sets)
        {
            var (etag, bytes) = await StoredManifestAsync(s3, cluster, set);
            etags[set] = etag;
            Assert.True(Contains(await File.ReadAllBytesAsync(file), [.. Convert.FromHexString(etag), .. Length(bytes), .. bytes]), $"{file} lacks set {set}'s manifest");
        }

        var second = await ListAsync(config, cluster, "--verbose");
        second.AssertError($"Scanned cluster {cluster}: 2 sets, 2 manifests from the local cache, 0 read from storage");
        Assert.Equal(first.Output, second.Output);

        // An entry that is not what its MD5 says is read again from storage, and replaced.
        var json = await ListAsync(config, cluster, "--json");
        var cached = await File.ReadAllBytesAsync(file);
        var at = cached.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes($"\"setId\": \"{sets[0]}\""));
        Assert.True(at > 0, $"{file} lacks set {sets[0]}");
        cached[at + 10] = (byte)'1'; // another year, the same length
        await File.WriteAllBytesAsync(file, cached);
        var tampered = await ListAsync(config, cluster, "--json", "--verbose");
        tampered.AssertError($"2 sets, 1 manifests from the local cache, 1 read from storage");
        Assert.Equal(json.Output, tampered.Output);
        (await ListAsync(config, cluster, "--verbose")).AssertError("2 sets, 2 manifests from the local cache, 0 read from storage");

        // A manifest changed in storage is read as storage holds it (here damaged), never as cached.
        var damaged = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-cache-test-").FullName, "manifest.json");
        await File.WriteAllTextAsync(damaged, "{\"cluster\":");
        await CheckAwsAsync(s3, "s3", "cp", damaged, $"s3://{LocalRig.Bucket}/backups/{cluster}/{sets[0]}/manifest.json");
        var changed = await ListAsync(config, cluster, "--verbose");
        Assert.Matches($@"{cluster}\s+{sets[0]}\s+.*DAMAGED: manifest.json cannot be read", changed.Output);
        changed.AssertError($"2 sets, 1 manifests from the local cache, 1 read from storage");
        Assert.False(Contains(await File.ReadAllBytesAsync(file), Convert.FromHexString(etags[sets[0]])), "the replaced manifest's entry is kept");

        // A cache that cannot be written costs the reads, nothing else.
        File.Delete(file);
        Directory.CreateDirectory(file);
        try
        {
            var unwritable = await ListAsync(config, cluster, "--verbose");
            Assert.Equal(changed.Output, unwritable.Output);
            unwritable.AssertError($"2 sets, 0 manifests from the local cache, 2 read from storage");
            unwritable.AssertError($"Manifest cache {file} not used");
        }
        finally
        {
            Directory.Delete(file);
        }
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task A_manifest_copied_under_another_set_id_is_damaged_though_the_cache_holds_its_bytes(string storage)
    {
        var cluster = $"manifest-cache-copy-{storage}";
        var (s3, config) = Store(storage, cluster);
        var original = await CliRunner.CommittedSetAsync(config);
        (await ListAsync(config, cluster, "--verbose")).AssertError($"Scanned cluster {cluster}: 1 sets, 1 manifests from the local cache, 0 read from storage");

        // The copy has the original's bytes, so its MD5 (its ETag) names the original's cache entry.
        const string Copy = "20200101T000000Z";
        await CheckAwsAsync(s3, "s3", "cp", $"s3://{LocalRig.Bucket}/backups/{cluster}/{original}/manifest.json", $"s3://{LocalRig.Bucket}/backups/{cluster}/{Copy}/manifest.json");
        Assert.Equal((await StoredManifestAsync(s3, cluster, original)).ETag, (await StoredManifestAsync(s3, cluster, Copy)).ETag);

        var list = await ListAsync(config, cluster, "--verbose");
        Assert.Matches($@"{cluster}\s+{Copy}\s+.*DAMAGED: manifest.json cannot be read", list.Output);
        Assert.Matches($@"{cluster}\s+{original}\s+", list.Output);
        list.AssertError($"it names cluster {cluster} set {original}");
        list.AssertError($"Scanned cluster {cluster}: 2 sets, 1 manifests from the local cache, 1 read from storage");
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task A_scan_without_a_local_cache_reads_the_manifests_the_last_backup_stored_in_one_read_and_only_those_that_are_what_storage_holds(string storage)
    {
        var cluster = $"stored-cache-{storage}";
        var (s3, config) = Store(storage, cluster);
        var template = await CliRunner.CommittedSetAsync(config);
        var oneSetCache = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-cache-test-").FullName, "one-set.manifests");
        File.Copy(TestEnvironment.ManifestCache(cluster), oneSetCache);
        // Four sets written by someone else (another agent, say); the next backup's retention scan reads them.
        await AddSetsByHandAsync(s3, cluster, template, "20200101T000000Z", "20200102T000000Z", "20200103T000000Z", "20200104T000000Z");
        var newest = await CliRunner.CommittedSetAsync(config);
        var local = await ListAsync(config, cluster, "--verbose");
        local.AssertError($"Scanned cluster {cluster}: 6 sets, 6 manifests from the local cache, 0 read from storage one by one, 0 from the stored cache");

        // The stored copy, as the aws CLI and zstd read it: the local cache's format, every kept manifest under its ETag.
        var copy = await StoredCacheAsync(s3, cluster);
        Assert.True(copy.AsSpan().StartsWith("cluster-backup manifests 1\n"u8), "the stored copy is not the cache's format");
        foreach (var set in new[] { template, newest, "20200104T000000Z" })
        {
            var (etag, bytes) = await StoredManifestAsync(s3, cluster, set);
            Assert.True(Contains(copy, [.. Convert.FromHexString(etag), .. Length(bytes), .. bytes]), $"the stored copy lacks set {set}'s manifest");
        }

        // A workstation that never scanned the cluster: one read instead of six; the same list.
        File.Delete(TestEnvironment.ManifestCache(cluster));
        var fresh = await ListAsync(config, cluster, "--verbose");
        fresh.AssertError($"6 sets, 0 manifests from the local cache, 0 read from storage one by one, 6 from the stored cache");
        Assert.Equal(local.Output, fresh.Output);
        (await ListAsync(config, cluster, "--verbose")).AssertError("6 sets, 6 manifests from the local cache, 0 read from storage one by one, 0 from the stored cache");

        // An entry altered in the stored copy is read from storage instead; a copy that is no cache at all costs every read.
        var at = copy.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes($"\"setId\": \"{newest}\""));
        Assert.True(at > 0, $"the stored copy lacks set {newest}");
        copy[at + 10] = (byte)'1';
        await PutStoredCacheAsync(s3, cluster, copy);
        File.Delete(TestEnvironment.ManifestCache(cluster));
        var altered = await ListAsync(config, cluster, "--verbose");
        altered.AssertError("6 sets, 0 manifests from the local cache, 1 read from storage one by one, 5 from the stored cache");
        Assert.Equal(local.Output, altered.Output);

        await PutStoredCacheAsync(s3, cluster, System.Text.Encoding.UTF8.GetBytes("not a cache"));
        File.Delete(TestEnvironment.ManifestCache(cluster));
        var garbage = await ListAsync(config, cluster, "--verbose");
        garbage.AssertError("6 sets, 0 manifests from the local cache, 6 read from storage one by one, 0 from the stored cache");
        Assert.Equal(local.Output, garbage.Output);

        // The next backup writes it again, and no set ever shows for it.
        await CliRunner.CommittedSetAsync(config);
        File.Delete(TestEnvironment.ManifestCache(cluster));
        var again = await ListAsync(config, cluster, "--verbose");
        again.AssertError("7 sets, 0 manifests from the local cache, 0 read from storage one by one, 7 from the stored cache");
        Assert.DoesNotContain("manifests.cache", again.Output);

        // A local cache that lacks six of seven (a workstation that listed the cluster long ago) reads the six in one GET too.
        File.Copy(oneSetCache, TestEnvironment.ManifestCache(cluster), overwrite: true);
        (await ListAsync(config, cluster, "--verbose")).AssertError("7 sets, 1 manifests from the local cache, 0 read from storage one by one, 6 from the stored cache");
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task A_prune_run_by_hand_stores_the_manifests_of_the_sets_it_keeps(string storage)
    {
        var cluster = $"stored-cache-prune-{storage}";
        var (s3, config) = Store(storage, cluster);
        var newest = await CliRunner.CommittedSetAsync(config);
        // Four older sets copied in by hand: the copy the backup stored holds none of them.
        var added = new[] { "20200101T000000Z", "20200102T000000Z", "20200103T000000Z", "20200104T000000Z" };
        await AddSetsByHandAsync(s3, cluster, newest, added);
        config["ClusterBackup"]!["Defaults"]!["Retention"] = new System.Text.Json.Nodes.JsonObject { ["KeepLast"] = 2 };
        var prune = await CliRunner.RunAsync(config, "prune", "--cluster", cluster);
        Assert.True(prune.ExitCode == 0, prune.ToString());
        Assert.Contains("removed 3 sets", prune.Output);

        // The copy now holds exactly the two sets left: a workstation without a cache reads both in one GET.
        var copy = await StoredCacheAsync(s3, cluster);
        foreach (var set in new[] { newest, added[^1] })
        {
            var (etag, bytes) = await StoredManifestAsync(s3, cluster, set);
            Assert.True(Contains(copy, [.. Convert.FromHexString(etag), .. Length(bytes), .. bytes]), $"the stored copy lacks set {set}'s manifest");
        }

        Assert.False(Contains(copy, System.Text.Encoding.UTF8.GetBytes(added[0])), "the stored copy still holds a removed set's manifest");
        File.Delete(TestEnvironment.ManifestCache(cluster));
        (await ListAsync(config, cluster, "--verbose")).AssertError("2 sets, 0 manifests from the local cache, 0 read from storage one by one, 2 from the stored cache");
    }

    /// <summary>Copies in, with the aws CLI, one set per id whose manifest is the template set's under that id.</summary>
    private static async Task AddSetsByHandAsync(S3Server s3, string cluster, string template, params string[] ids)
    {
        var (_, templateBytes) = await StoredManifestAsync(s3, cluster, template);
        var others = Directory.CreateTempSubdirectory("cluster-backup-cache-test-").FullName;
        foreach (var id in ids)
        {
            Directory.CreateDirectory(Path.Combine(others, id));
            await File.WriteAllTextAsync(Path.Combine(others, id, "manifest.json"), System.Text.Encoding.UTF8.GetString(templateBytes).Replace(template, id, StringComparison.Ordinal));
        }

        await CheckAwsAsync(s3, "s3", "cp", "--recursive", "--quiet", others, $"s3://{LocalRig.Bucket}/backups/{cluster}/");
    }

    /// <summary>The stored manifest cache of a cluster, decompressed by the zstd CLI.</summary>
    private static async Task<byte[]> StoredCacheAsync(S3Server s3, string cluster)
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-cache-test-").FullName, "manifests.cache.zst");
        await CheckAwsAsync(s3, "s3", "cp", $"s3://{LocalRig.Bucket}/backups/{cluster}/manifests.cache.zst", file);
        await Tools.CheckAsync("zstd", "-d", "-q", file);
        return await File.ReadAllBytesAsync(file[..^4]);
    }

    /// <summary>Replaces the stored manifest cache with the given bytes, compressed by the zstd CLI.</summary>
    private static async Task PutStoredCacheAsync(S3Server s3, string cluster, byte[] content)
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-cache-test-").FullName, "manifests.cache");
        await File.WriteAllBytesAsync(file, content);
        await Tools.CheckAsync("zstd", "-q", file);
        await CheckAwsAsync(s3, "s3", "cp", file + ".zst", $"s3://{LocalRig.Bucket}/backups/{cluster}/manifests.cache.zst");
    }

    /// <summary>The S3 server and a tunnel-mode configuration of a cluster backed up to it.</summary>
    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Retention_reads_each_kept_sets_signature_from_storage_once_and_a_replaced_one_again(string storage)
    {
        var cluster = $"signature-cache-{storage}";
        var (s3, config) = Store(storage, cluster);
        string[] sets = [await CliRunner.CommittedSetAsync(config), await CliRunner.CommittedSetAsync(config), await CliRunner.CommittedSetAsync(config)];

        // Each backup's retention read the signature of the set it made; the caches hold the others.
        (await PruneAsync(config, cluster)).AssertError($"Retention of {cluster} checked 3 signatures, 0 of them read from storage");
        // A workstation without a local cache finds them in the stored copy.
        File.Delete(TestEnvironment.ManifestCache(cluster));
        (await PruneAsync(config, cluster)).AssertError($"Retention of {cluster} checked 3 signatures, 0 of them read from storage");
        // Without either, each is read once.
        File.Delete(TestEnvironment.ManifestCache(cluster));
        await CheckAwsAsync(s3, "s3", "rm", $"s3://{LocalRig.Bucket}/backups/{cluster}/{StoredManifestCache.Name}");
        (await PruneAsync(config, cluster, "--dry-run")).AssertError($"Retention of {cluster} checked 3 signatures, 3 of them read from storage");
        (await PruneAsync(config, cluster, "--dry-run")).AssertError($"Retention of {cluster} checked 3 signatures, 0 of them read from storage");

        // A signature replaced in storage (another set's, a line added: well formed, over other bytes) is read again, and refused, once.
        var other = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-cache-test-").FullName, "manifest.json.sig");
        await CheckAwsAsync(s3, "s3", "cp", $"s3://{LocalRig.Bucket}/backups/{cluster}/{sets[1]}/manifest.json.sig", other);
        await File.AppendAllTextAsync(other, "\n");
        await CheckAwsAsync(s3, "s3", "cp", other, $"s3://{LocalRig.Bucket}/backups/{cluster}/{sets[0]}/manifest.json.sig");
        foreach (var read in new[] { 1, 0 })
        {
            var prune = await PruneAsync(config, cluster, "--dry-run");
            prune.AssertError($"Retention of {cluster} checked 3 signatures, {read} of them read from storage");
            prune.AssertError($"Set {sets[0]} of {cluster} counts for retention, but costs no signed set its place: cluster {cluster}: set {sets[0]}: signature does not match the manifest");
            Assert.Matches($@"(?m)^{sets[0]} .* keep\s+.*its signature is refused", prune.Output);
        }
    }

    private static async Task<CliResult> PruneAsync(System.Text.Json.Nodes.JsonObject config, string cluster, params string[] options)
    {
        var prune = await CliRunner.RunAsync(config, ["prune", "--cluster", cluster, "--verbose", .. options]);
        Assert.True(prune.ExitCode == 0, prune.ToString());
        return prune;
    }

    private (S3Server S3, System.Text.Json.Nodes.JsonObject Config) Store(string storage, string cluster) =>
        (storage == "moto" ? _rig.Moto : _rig.S3rver, _rig.Config(storage, cluster, "tunnel", _rig.Node1));

    private static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;

    private static byte[] Length(byte[] bytes) => [(byte)(bytes.Length >> 24), (byte)(bytes.Length >> 16), (byte)(bytes.Length >> 8), (byte)bytes.Length];

    private static async Task<CliResult> ListAsync(System.Text.Json.Nodes.JsonObject config, string cluster, params string[] options)
    {
        var list = await CliRunner.RunAsync(config, ["list", "--cluster", cluster, .. options]);
        Assert.True(list.ExitCode == 0, list.ToString());
        return list;
    }

    /// <summary>A stored manifest's ETag (as the MD5 the cache names it by) and bytes, as the aws CLI reads them.</summary>
    private static async Task<(string ETag, byte[] Bytes)> StoredManifestAsync(S3Server s3, string cluster, string set)
    {
        var key = $"backups/{cluster}/{set}/manifest.json";
        var head = JsonSerializer.Deserialize<JsonElement>(await CheckAwsAsync(s3, "s3api", "head-object", "--bucket", LocalRig.Bucket, "--key", key, "--output", "json"));
        var file = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-cache-test-").FullName, "manifest.json");
        await CheckAwsAsync(s3, "s3", "cp", $"s3://{LocalRig.Bucket}/{key}", file);
        return (head.GetProperty("ETag").GetString()!.Trim('"'), await File.ReadAllBytesAsync(file));
    }

    private static async Task<string> CheckAwsAsync(S3Server s3, params string[] arguments)
    {
        var result = await s3.AwsAsync(arguments);
        Assert.True(result.ExitCode == 0, $"aws {string.Join(' ', arguments)}: {result}");
        return result.Output;
    }
}
