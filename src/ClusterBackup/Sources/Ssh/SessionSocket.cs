using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using Renci.SshNet;

namespace ClusterBackup.Sources.Ssh;

/// <summary>
/// Lets SSH.NET's receiving thread wait for the node in the kernel. SSH.NET connects its session
/// socket asynchronously, and in .NET on Linux a socket used asynchronously stays non-blocking for
/// good: SSH.NET's blocking reads on its own thread are then emulated, each wait for the next
/// packet parked on an event that the socket engine's epoll thread sets, two thread wake-ups per
/// wait instead of one. Clearing <c>O_NONBLOCK</c> again once the session is up makes each read a
/// plain blocking <c>recv</c>. Disposing the socket still ends a read in progress: .NET shuts a
/// stream socket down when it closes one that a call is using.
/// </summary>
/// <remarks>
/// SSH.NET exposes no socket, so this reads its session's private field. Where a later SSH.NET
/// moves it, nothing changes but the speed, and <c>SessionSocketTests</c> fails.
/// </remarks>
internal static partial class SessionSocket
{
    private const int GetStatusFlags = 3; // F_GETFL
    private const int SetStatusFlags = 4; // F_SETFL
    private const int NonBlocking = 0x800; // O_NONBLOCK

    /// <summary>Makes <paramref name="client"/>'s connected session socket blocking; false where it cannot.</summary>
    [DynamicDependency("Session", typeof(BaseClient))]
    [DynamicDependency("_socket", "Renci.SshNet.Session", "Renci.SshNet")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "The members read are kept by the DynamicDependency attributes; one not found leaves the socket as it is.")]
    public static bool TryMakeBlocking(BaseClient client)
    {
        var session = typeof(BaseClient).GetProperty("Session", BindingFlags.Instance | BindingFlags.NonPublic)?.GetValue(client);
        if (session?.GetType().GetField("_socket", BindingFlags.Instance | BindingFlags.NonPublic)?.GetValue(session) is not Socket { Connected: true } socket)
        {
            return false;
        }

        var handle = socket.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var descriptor = (int)handle.DangerousGetHandle();
            var flags = Fcntl(descriptor, GetStatusFlags, 0);
            return flags >= 0 && ((flags & NonBlocking) == 0 || Fcntl(descriptor, SetStatusFlags, flags & ~NonBlocking) == 0);
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "fcntl")]
    private static partial int Fcntl(int descriptor, int command, int argument);
}
