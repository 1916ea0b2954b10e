using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using ClusterBackup.Configuration;
using Microsoft.Extensions.Logging;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace ClusterBackup.Sources.Ssh;

/// <summary>Opens SSH sessions to control-plane nodes: key auth, host key pinned in known_hosts.</summary>
internal sealed partial class SshNodeConnector(ILogger<SshNodeConnector> logger)
{
    // AES-GCM first: several times SSH.NET's throughput with its default CTR+HMAC (DESIGN.md).
    private static readonly string[] PreferredCiphers =
        ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"];

    public async Task<NodeSession> ConnectAsync(ControlPlaneSettings node, CancellationToken cancellationToken = default)
    {
        var connection = CreateConnectionInfo(node, out var hostKeyCheck);
        var client = new SshClient(connection);
        client.HostKeyReceived += hostKeyCheck.OnHostKeyReceived;
        try
        {
            await client.ConnectAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            throw new NodeOperationException(node.Name, NodeStep.Connect, hostKeyCheck.Refusal ?? DescribeConnectFailure(node, ex), ex);
        }

        LogConnected(node.Name, node.Address, node.Ssh.Port, connection.CurrentServerEncryption ?? "unknown");
        if (!SessionSocket.TryMakeBlocking(client))
        {
            LogSocketLeftNonBlocking(node.Name);
        }

        return new NodeSession(node, client, () => CreateSftpClient(node));
    }

    private SftpClient CreateSftpClient(ControlPlaneSettings node)
    {
        var connection = CreateConnectionInfo(node, out var hostKeyCheck);
        var sftp = new SftpClient(connection) { BufferSize = 256 * 1024 };
        sftp.HostKeyReceived += hostKeyCheck.OnHostKeyReceived;
        return sftp;
    }

    private static ConnectionInfo CreateConnectionInfo(ControlPlaneSettings node, out HostKeyCheck hostKeyCheck)
    {
        var ssh = node.Ssh;
        PrivateKeyFile key;
        try
        {
            key = new PrivateKeyFile(ssh.PrivateKeyFile!);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or SshException or InvalidOperationException or ArgumentException)
        {
            throw new NodeOperationException(node.Name, NodeStep.Connect,
                $"cannot load the SSH private key {ssh.PrivateKeyFile}: {ex.Message} (an unencrypted OpenSSH or PEM key is required)", ex);
        }

        KnownHosts knownHosts;
        try
        {
            knownHosts = KnownHosts.Load(ssh.KnownHostsFile!);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new NodeOperationException(node.Name, NodeStep.Connect, $"cannot read known_hosts {ssh.KnownHostsFile}: {ex.Message}", ex);
        }

        var connection = new ConnectionInfo(node.Address, ssh.Port, ssh.User, new PrivateKeyAuthenticationMethod(ssh.User, key))
        {
            Timeout = TimeSpan.FromSeconds(ssh.ConnectTimeoutSeconds),
        };
        PreferCiphers(connection);
        OfferOnlyKnownKeyTypes(connection, knownHosts.KeyTypesFor(node.Address, ssh.Port));
        hostKeyCheck = new HostKeyCheck(node, knownHosts);
        return connection;
    }

    private static void PreferCiphers(ConnectionInfo connection)
    {
        var all = connection.Encryptions.ToList();
        connection.Encryptions.Clear();
        foreach (var pair in all.OrderBy(p => Array.IndexOf(PreferredCiphers, p.Key) is var i and >= 0 ? i : int.MaxValue))
        {
            connection.Encryptions.Add(pair);
        }
    }

    /// <summary>
    /// Negotiate only host key algorithms whose key type known_hosts holds for this host, as
    /// OpenSSH does; otherwise the server may present a different key type and look "unknown".
    /// </summary>
    private static void OfferOnlyKnownKeyTypes(ConnectionInfo connection, IReadOnlySet<string> knownTypes)
    {
        if (knownTypes.Count == 0)
        {
            return;
        }

        foreach (var algorithm in connection.HostKeyAlgorithms.Keys.ToList())
        {
            if (!knownTypes.Contains(KeyTypeOfAlgorithm(algorithm)))
            {
                connection.HostKeyAlgorithms.Remove(algorithm);
            }
        }
    }

    private static string KeyTypeOfAlgorithm(string algorithm) =>
        algorithm is "rsa-sha2-256" or "rsa-sha2-512" ? "ssh-rsa" : algorithm;

    private static string DescribeConnectFailure(ControlPlaneSettings node, Exception ex)
    {
        var target = $"{node.Ssh.User}@{node.Address}:{node.Ssh.Port}";
        return ex switch
        {
            SocketException socket => $"cannot reach {target}: {socket.Message}",
            SshAuthenticationException => $"{target} refused the key {node.Ssh.PrivateKeyFile}: add its public key to the user's authorized_keys on the node",
            SshOperationTimeoutException => $"{target} did not answer within {node.Ssh.ConnectTimeoutSeconds}s",
            _ => $"cannot connect to {target}: {ex.Message}",
        };
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connected to {Node} ({Address}:{Port}), cipher {Cipher}")]
    private partial void LogConnected(string node, string address, int port, string cipher);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The SSH session socket to {Node} stays non-blocking (SSH.NET's session socket not found): transfers take more CPU")]
    private partial void LogSocketLeftNonBlocking(string node);

    /// <summary>Decides trust for one connection and remembers why it refused, for the error message.</summary>
    private sealed class HostKeyCheck(ControlPlaneSettings node, KnownHosts knownHosts)
    {
        public string? Refusal { get; private set; }

        public void OnHostKeyReceived(object? sender, HostKeyEventArgs e)
        {
            var keyType = KeyTypeOfBlob(e.HostKey) ?? KeyTypeOfAlgorithm(e.HostKeyName);
            var verdict = knownHosts.Check(node.Address, node.Ssh.Port, keyType, e.HostKey);
            e.CanTrust = verdict == HostKeyVerdict.Trusted;
            if (e.CanTrust)
            {
                return;
            }

            var file = node.Ssh.KnownHostsFile;
            var host = KnownHosts.HostString(node.Address, node.Ssh.Port);
            var offered = $"{keyType} SHA256:{e.FingerPrintSHA256}";
            var scan = $"ssh-keyscan -p {node.Ssh.Port} -t {keyType} {node.Address} >> {file}";
            Refusal = verdict switch
            {
                HostKeyVerdict.Changed =>
                    $"host key of {host} CHANGED: it offered {offered}, which differs from {file}. Someone may be intercepting the connection, " +
                    $"or the node was reinstalled. If the new key is genuine (check it on the node with ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), " +
                    $"remove the old one (ssh-keygen -R '{host}' -f {file}) and add it: {scan}",
                HostKeyVerdict.Revoked => $"host key of {host} ({offered}) is marked @revoked in {file}",
                _ =>
                    $"host key of {host} is unknown: it offered {offered}, which is not in {file}. If that is the node's key " +
                    $"(check it on the node with ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), add it: {scan}",
            };
        }

        /// <summary>The key type is the first string of the SSH public key blob.</summary>
        private static string? KeyTypeOfBlob(byte[] blob)
        {
            if (blob.Length < 4)
            {
                return null;
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(blob);
            return length > 0 && length <= blob.Length - 4 ? Encoding.ASCII.GetString(blob, 4, length) : null;
        }
    }
}
