using System.Security.Cryptography;
using ClusterBackup.Rig;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Sources.Ssh;

/// <summary>
/// <see cref="PacedFileStream"/> against the rig's real sshd: the file arrives whole, a reader that
/// stops holds only the slices it asked for, and a command that dies or a read that is cancelled
/// fails the stream instead of ending it short.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class PacedFileStreamTests(RigFixture fixture) : IDisposable
{
    private const int Slice = PacedFileStream.SliceMiB * 1024 * 1024;
    private readonly LocalRig _rig = fixture.Rig;
    private readonly string _root = Directory.CreateTempSubdirectory("cluster-backup-paced-").FullName;

    private Task<NodeSession> ConnectAsync(bool sudo = false) => RigSessions.ConnectAsync(_rig, "paced", "exec", sudo);

    private string RandomFile(long size, string name = "file")
    {
        var path = Path.Combine(_root, name);
        using var file = File.Create(path);
        var chunk = new byte[1024 * 1024];
        for (var left = size; left > 0; left -= chunk.Length)
        {
            RandomNumberGenerator.Fill(chunk);
            file.Write(chunk, 0, (int)Math.Min(chunk.Length, left));
        }

        return path;
    }

    public static TheoryData<long, bool> Sizes => new()
    {
        { 0, false }, { 1, false }, { Slice - 1, false }, { Slice, false }, { Slice + 1, false }, { (3L * Slice) + 5, false }, { (3L * Slice) + 5, true },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task The_file_arrives_whole_whatever_its_size(long size, bool sudo)
    {
        var path = RandomFile(size, "it's a file");
        if (sudo)
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead); // root's alone: only sudo reads it
        }

        using var session = await ConnectAsync(sudo);
        await using var stream = await session.OpenFileAsync(path, NodeStep.EtcdSnapshot);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[100_000]; // not a divisor of a slice
        long total = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            total += read;
        }

        Assert.Equal(size, stream.Size);
        Assert.Equal(size, total);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))), Convert.ToHexString(hash.GetHashAndReset()));
        Assert.Equal(0, await stream.ReadAsync(buffer)); // and again at the end
    }

    [Fact]
    public async Task A_reader_that_stops_holds_no_more_than_the_slices_it_asked_for()
    {
        var path = RandomFile(64L * 1024 * 1024);
        using var session = await ConnectAsync();
        await using var stream = await session.OpenFileAsync(path, NodeStep.EtcdSnapshot);
        var buffer = new byte[1024];
        Assert.Equal(1024, await stream.ReadAsync(buffer));

        // The node sends what was asked for, then waits.
        var held = await SettledAsync(() => stream.Buffered);
        Assert.InRange(held, (long)PacedFileStream.SlicesAhead * Slice, ((PacedFileStream.SlicesAhead + 1L) * Slice) - 1024);

        await using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal((64L * 1024 * 1024) - 1024, copy.Length);
        Assert.Equal(File.ReadAllBytes(path).AsSpan(1024).ToArray(), copy.ToArray());
    }

    [Fact]
    public async Task A_file_that_cannot_be_read_fails_naming_the_node_and_the_file()
    {
        var path = Path.Combine(_root, "missing.db");
        using var session = await ConnectAsync();

        var failure = await Assert.ThrowsAsync<NodeOperationException>(() => session.OpenFileAsync(path, NodeStep.EtcdSnapshot));

        Assert.Equal(("cp1", NodeStep.EtcdSnapshot), (failure.Node, failure.Step));
        Assert.StartsWith($"reading {path} failed on the node: exit status 1: ", failure.Message);
    }

    [Fact]
    public async Task A_command_killed_midway_fails_the_read_instead_of_ending_it()
    {
        var path = RandomFile(64L * 1024 * 1024, "killed.db");
        using var session = await ConnectAsync();
        await using var stream = await session.OpenFileAsync(path, NodeStep.EtcdSnapshot);
        var buffer = new byte[Slice];
        await stream.ReadAtLeastAsync(buffer, Slice);

        var kill = await Tools.RunAsync("pkill", ["-9", "-f", path]);
        Assert.True(kill.ExitCode == 0, kill.ToString());

        var failure = await Assert.ThrowsAsync<NodeOperationException>(async () =>
        {
            while (await stream.ReadAsync(buffer) > 0)
            {
            }
        });
        Assert.Contains($"of {64L * 1024 * 1024} bytes", failure.Message);
        Assert.Contains(path, failure.Message);
    }

    [Fact]
    public async Task A_cancelled_read_stops_at_once_and_leaves_nothing_running_on_the_node()
    {
        var path = RandomFile(64L * 1024 * 1024, "cancelled.db");
        using var session = await ConnectAsync();
        var stream = await session.OpenFileAsync(path, NodeStep.EtcdSnapshot);
        var buffer = new byte[1024];
        await stream.ReadExactlyAsync(buffer);
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await stream.ReadExactlyAsync(buffer, cancel.Token));
        await stream.DisposeAsync();

        Assert.True(await SettledAsync(async () => (await Tools.RunAsync("pgrep", ["-f", path])).ExitCode == 1), "the node's reader still runs");
    }

    /// <summary>The value once it has not changed for half a second (at most 10 s).</summary>
    private static async Task<long> SettledAsync(Func<long> value)
    {
        var last = -1L;
        for (var i = 0; i < 20; i++)
        {
            var now = value();
            if (now == last)
            {
                return now;
            }

            last = now;
            await Task.Delay(500);
        }

        return last;
    }

    private static async Task<bool> SettledAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 20; i++)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(250);
        }

        return false;
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
