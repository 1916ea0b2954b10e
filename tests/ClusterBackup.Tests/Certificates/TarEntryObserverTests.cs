using ClusterBackup.Certificates;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Certificates;

/// <summary>
/// The tar stream a backup reads passes through unchanged, the wanted files come out whole, and
/// every entry is named, from archives GNU tar wrote.
/// </summary>
public sealed class TarEntryObserverTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cluster-backup-tar-").FullName;

    [Theory]
    [InlineData("gnu", 1)]
    [InlineData("gnu", 7)]
    [InlineData("pax", 512)]
    [InlineData("ustar", 65536)]
    public async Task Wanted_files_are_handed_over_whole_and_the_stream_is_unchanged(string format, int chunk)
    {
        var tree = Path.Combine(_root, "tree");
        var deep = Path.Combine(tree, "etcd", new string('d', 90), new string('e', 40));
        Directory.CreateDirectory(deep);
        var files = new Dictionary<string, byte[]>
        {
            ["ca.crt"] = RandomBytes(1234),
            ["ca.key"] = RandomBytes(1700),
            ["etcd/server.crt"] = RandomBytes(512),
            ["empty.crt"] = [],
            [Path.GetRelativePath(tree, Path.Combine(deep, "long-name.crt"))] = RandomBytes(3000),
            ["big.bin"] = RandomBytes(3 * 1024 * 1024),
        };
        foreach (var (name, content) in files)
        {
            await File.WriteAllBytesAsync(Path.Combine(tree, name), content);
        }

        File.CreateSymbolicLink(Path.Combine(tree, "link.crt"), "ca.crt"); // an entry, but no file to hand over

        var archive = Path.Combine(_root, "a.tar");
        // ustar cannot hold the long path: it goes in the prefix field, which is what is tested there.
        var tar = await Tools.RunAsync("tar", ["--format", format, "-cf", archive, "-C", tree, "."]);
        Assert.True(tar.ExitCode == 0, tar.ToString());

        var original = await File.ReadAllBytesAsync(archive);
        var seen = new Dictionary<string, byte[]>();
        var entries = new HashSet<string>(StringComparer.Ordinal);
        await using var observer = new TarEntryObserver(
            new MemoryStream(original), n => n.EndsWith(".crt", StringComparison.Ordinal), (n, c) => seen.Add(n, c), n => entries.Add(n));
        var copy = new MemoryStream();
        var buffer = new byte[chunk];
        int read;
        while ((read = await observer.ReadAsync(buffer)) > 0)
        {
            copy.Write(buffer, 0, read);
        }

        Assert.Equal(original, copy.ToArray());
        var expected = files.Where(f => f.Key.EndsWith(".crt", StringComparison.Ordinal)).OrderBy(f => f.Key, StringComparer.Ordinal).ToList();
        Assert.Equal(expected.Select(f => f.Key), seen.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, content) in expected)
        {
            Assert.Equal(content, seen[name]);
        }

        // Every entry is named, whatever its kind or the length of its name.
        Assert.Superset(files.Keys.Append("link.crt").Append("etcd").Append(Path.GetRelativePath(tree, deep)).ToHashSet(StringComparer.Ordinal), entries);
    }

    private static byte[] RandomBytes(int count) => System.Security.Cryptography.RandomNumberGenerator.GetBytes(count);

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
