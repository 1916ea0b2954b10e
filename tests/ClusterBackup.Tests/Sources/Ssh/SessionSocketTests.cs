using System.Globalization;
using ClusterBackup.Rig;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Sources.Ssh;

/// <summary>
/// <see cref="SessionSocket"/> against the rig's real sshd: the agent's SSH sessions read the node
/// with blocking calls, as the kernel reports them (<c>/proc/self/fdinfo</c>), not as SSH.NET's
/// private field says. It fails when an SSH.NET upgrade moves that field.
/// </summary>
[Collection(RigCollection.Name)]
public sealed class SessionSocketTests(RigFixture fixture)
{
    private const int NonBlocking = 0x800; // O_NONBLOCK

    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public async Task The_agents_SSH_and_SFTP_sessions_read_the_node_with_blocking_calls()
    {
        var before = SocketsTo(_rig.Node1.Port).Keys.ToHashSet();

        using var session = await RigSessions.ConnectAsync(_rig, "blocking", "tunnel");
        var afterSsh = New(before);
        using var sftp = await session.OpenSftpAsync();
        var afterSftp = New(before);

        Assert.Single(afterSsh);
        Assert.Equal(2, afterSftp.Count);
        Assert.All(afterSftp, socket => Assert.True((socket.Value & NonBlocking) == 0, $"socket {socket.Key} is non-blocking (flags {socket.Value:x})"));
        Assert.Equal("ok\n", (await session.RunAsync("echo ok")).Output); // the session still works both ways
    }

    private Dictionary<long, int> New(HashSet<long> before) =>
        SocketsTo(_rig.Node1.Port).Where(socket => !before.Contains(socket.Key)).ToDictionary();

    /// <summary>This process's established TCP connections to <paramref name="port"/> on loopback: socket inode, file status flags.</summary>
    private static Dictionary<long, int> SocketsTo(int port)
    {
        var inodes = new HashSet<long>();
        foreach (var table in new[] { "/proc/self/net/tcp", "/proc/self/net/tcp6" })
        {
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var remotePort = int.Parse(columns[2][(columns[2].LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (remotePort == port && columns[3] == "01")
                {
                    inodes.Add(long.Parse(columns[9], CultureInfo.InvariantCulture));
                }
            }
        }

        var sockets = new Dictionary<long, int>();
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            var target = new FileInfo(fd).LinkTarget;
            if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal)
                && long.Parse(target[8..^1], CultureInfo.InvariantCulture) is var inode && inodes.Contains(inode))
            {
                var flags = File.ReadLines($"/proc/self/fdinfo/{Path.GetFileName(fd)}").First(l => l.StartsWith("flags:", StringComparison.Ordinal));
                sockets[inode] = Convert.ToInt32(flags[6..].Trim(), 8);
            }
        }

        return sockets;
    }
}
