using System.Security.Cryptography;
using System.Text;
using ClusterBackup.Catalog;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace ClusterBackup.Tests.Catalog;

/// <summary>The manifest cache on a real directory: content-addressed by the listing's ETag, and never trusted blindly.</summary>
public sealed class ManifestCacheTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cluster-backup-manifest-cache-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private ManifestCache Cache() => new(_directory, _time, NullLogger<ManifestCache>.Instance);

    private static (byte[] Bytes, string ETag) Manifest(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return (bytes, $"\"{Convert.ToHexStringLower(MD5.HashData(bytes))}\"");
    }

    [Fact]
    public void The_directory_is_systemds_cache_directory_else_XDG_CACHE_HOME_else_the_home_directorys_cache()
    {
        Dictionary<string, string> all = new() { ["CACHE_DIRECTORY"] = "/var/cache/cluster-backup", ["XDG_CACHE_HOME"] = "/x", ["HOME"] = "/home/op" };
        string? Resolve(params string[] names) => ManifestCache.DefaultDirectory(name => names.Contains(name) ? all[name] : null);

        Assert.Equal("/var/cache/cluster-backup/manifests", Resolve("CACHE_DIRECTORY", "XDG_CACHE_HOME", "HOME"));
        Assert.Equal("/x/cluster-backup/manifests", Resolve("XDG_CACHE_HOME", "HOME"));
        Assert.Equal("/home/op/.cache/cluster-backup/manifests", Resolve("HOME"));
        Assert.Null(Resolve());
        Assert.Null(ManifestCache.DefaultDirectory(name => name == "HOME" ? "relative" : null));
    }

    [Theory]
    [InlineData("\"9E107D9D372BB6826BD81D3542A419D6\"", "9e107d9d372bb6826bd81d3542a419d6")]
    [InlineData("9e107d9d372bb6826bd81d3542a419d6", "9e107d9d372bb6826bd81d3542a419d6")]
    [InlineData("\"9e107d9d372bb6826bd81d3542a419d6-2\"", null)] // a multipart upload's
    [InlineData("\"../../../../etc/passwd\"", null)]
    [InlineData(null, null)]
    public void Only_an_ETag_that_is_an_MD5_names_an_entry(string? etag, string? md5) => Assert.Equal(md5, ManifestCache.Md5OfETag(etag));

    [Fact]
    public void Entries_saved_for_a_cluster_are_loaded_back_by_their_MD5_and_a_save_replaces_them()
    {
        var (first, firstETag) = Manifest("{\"setId\":\"20261127T120000Z\"}");
        var (second, secondETag) = Manifest("{\"setId\":\"20261127T130000Z\"}");
        var cache = Cache();
        Assert.Empty(cache.Load("prod"));

        cache.Save("prod", Entries((firstETag, first), (secondETag, second)));

        Assert.Equal(Path.Combine(_directory, "prod.manifests"), cache.PathOf("prod"));
        var loaded = cache.Load("prod");
        Assert.Equal(first, loaded[ManifestCache.Md5OfETag(firstETag)!]);
        Assert.Equal(second, loaded[ManifestCache.Md5OfETag(secondETag)!]);
        Assert.Empty(cache.Load("other"));

        cache.Save("prod", Entries((secondETag, second)));
        Assert.Equal([ManifestCache.Md5OfETag(secondETag)!], cache.Load("prod").Keys);
        Assert.Equal(["prod.manifests"], Directory.GetFiles(_directory).Select(Path.GetFileName));
    }

    [Fact]
    public void An_entry_whose_bytes_are_not_what_its_MD5_says_is_not_loaded_and_a_truncated_file_keeps_its_whole_entries()
    {
        var (first, firstETag) = Manifest("{\"setId\":\"20261127T120000Z\"}");
        var (second, secondETag) = Manifest("{\"setId\":\"20261127T130000Z\"}");
        var cache = Cache();
        cache.Save("prod", Entries((firstETag, first), (secondETag, second)));
        var path = cache.PathOf("prod")!;
        var file = File.ReadAllBytes(path);
        var at = file.AsSpan().IndexOf(Encoding.UTF8.GetBytes("20261127T120000Z"));

        file[at] = (byte)'3'; // the same length, other bytes: a forged entry
        File.WriteAllBytes(path, file);
        Assert.Equal([ManifestCache.Md5OfETag(secondETag)!], cache.Load("prod").Keys);

        cache.Save("prod", Entries((firstETag, first), (secondETag, second)));
        var whole = File.ReadAllBytes(path);
        var firstIsFirst = string.CompareOrdinal(ManifestCache.Md5OfETag(firstETag), ManifestCache.Md5OfETag(secondETag)) < 0;
        File.WriteAllBytes(path, whole[..^3]);
        Assert.Equal([ManifestCache.Md5OfETag(firstIsFirst ? firstETag : secondETag)!], cache.Load("prod").Keys);

        File.WriteAllText(path, "not a cache file");
        Assert.Empty(cache.Load("prod"));
    }

    [Fact]
    public void An_entry_given_twice_is_read_once_and_only_the_entries_asked_for_are_read()
    {
        var (first, firstETag) = Manifest("{\"setId\":\"20261127T120000Z\"}");
        var (second, secondETag) = Manifest("{\"setId\":\"20261127T130000Z\"}");
        using var one = new MemoryStream();
        ManifestCache.WriteEntries(one, Entries((firstETag, first)));
        var entry = one.ToArray()[27..]; // after the format's first line
        using var twice = new MemoryStream([.. one.ToArray(), .. entry]);
        Assert.Single(ManifestCache.ReadEntries(twice, _ => true));

        using var both = new MemoryStream();
        ManifestCache.WriteEntries(both, Entries((firstETag, first), (secondETag, second)));
        both.Position = 0;
        Assert.Equal([ManifestCache.Md5OfETag(secondETag)!], ManifestCache.ReadEntries(both, md5 => md5 == ManifestCache.Md5OfETag(secondETag)).Select(e => e.Key));
    }

    [Fact]
    public void A_save_removes_the_writes_a_killed_process_left_over_an_hour_ago()
    {
        var (bytes, etag) = Manifest("{}");
        var abandoned = Path.Combine(_directory, "prod.manifests.0123.tmp");
        var writing = Path.Combine(_directory, "prod.manifests.4567.tmp");
        File.WriteAllText(abandoned, "half");
        File.WriteAllText(writing, "half");
        File.SetLastWriteTimeUtc(abandoned, _time.GetUtcNow().UtcDateTime.AddHours(-2));
        File.SetLastWriteTimeUtc(writing, _time.GetUtcNow().UtcDateTime.AddMinutes(-1));

        Cache().Save("prod", Entries((etag, bytes)));

        Assert.Equal(
            new[] { "prod.manifests", Path.GetFileName(writing) }.Order(StringComparer.Ordinal),
            Directory.GetFiles(_directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_cache_that_cannot_be_written_or_none_at_all_is_passed_over()
    {
        var (bytes, etag) = Manifest("{}");
        Directory.CreateDirectory(Path.Combine(_directory, "prod.manifests"));
        var cache = Cache();

        cache.Save("prod", Entries((etag, bytes)));
        Assert.Empty(cache.Load("prod"));
        Assert.Empty(Directory.GetFiles(_directory));

        var none = new ManifestCache(null, _time, NullLogger<ManifestCache>.Instance);
        none.Save("prod", Entries((etag, bytes)));
        Assert.Null(none.PathOf("prod"));
        Assert.Empty(none.Load("prod"));
    }

    private static Dictionary<string, byte[]> Entries(params (string ETag, byte[] Bytes)[] entries) =>
        entries.ToDictionary(e => ManifestCache.Md5OfETag(e.ETag)!, e => e.Bytes);
}
