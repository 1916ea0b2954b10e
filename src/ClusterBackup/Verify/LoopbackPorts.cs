using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ClusterBackup.Verify;

/// <summary>
/// Loopback TCP ports for throwaway servers (a drill's etcd). They are picked below the kernel's
/// ephemeral range, so no outgoing connection can take one as its source port between the pick and
/// the server's bind, and never handed out twice by this process.
/// </summary>
internal static class LoopbackPorts
{
    private const string EphemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
    private const int Window = 12_000;
    private const int LowestUnprivileged = 1024;

    private static readonly Lock Gate = new();
    private static readonly HashSet<int> HandedOut = [];

    /// <summary>A port that was free a moment ago and that this process has not handed out before.</summary>
    public static int Next()
    {
        var ephemeralLow = EphemeralLow();
        var low = Math.Max(LowestUnprivileged, ephemeralLow - Window);
        lock (Gate)
        {
            for (var attempt = 0; ephemeralLow - low >= 100 && attempt < 500; attempt++)
            {
                var port = Random.Shared.Next(low, ephemeralLow);
                if (!HandedOut.Contains(port) && CanListen(port))
                {
                    HandedOut.Add(port);
                    return port;
                }
            }

            // No room below the ephemeral range: let the kernel choose.
            while (true)
            {
                using var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                if (HandedOut.Add(port))
                {
                    return port;
                }
            }
        }
    }

    private static int EphemeralLow()
    {
        try
        {
            var fields = File.ReadAllText(EphemeralRangeFile).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return int.Parse(fields[0], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32768;
        }
    }

    private static bool CanListen(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            socket.Listen();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
