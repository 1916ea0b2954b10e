using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ClusterBackup.Sources.Etcd.Protocol;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Tls;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace ClusterBackup.Sources.Etcd;

/// <summary>
/// <c>Mode=tunnel</c>: the client certificate is read from the node into memory, a local port is
/// forwarded over SSH to the node's etcd client port, and the snapshot is streamed over gRPC/TLS.
/// Nothing touches either disk, and the socket gives back-pressure end to end.
/// </summary>
internal sealed class TunnelSnapshotSource(TimeProvider time) : IEtcdSnapshotSource
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);
    private const NodeStep Step = NodeStep.EtcdSnapshot;

    /// <summary>
    /// How far etcd may send ahead of what the pipeline has read. With HTTP/2's default (64 KiB, two
    /// of etcd's 32 KiB snapshot messages) etcd keeps waiting for window updates, and each one
    /// crosses the SSH tunnel (the forwarded port, SSH.NET's session, sshd) before etcd may send
    /// again. 2 MiB keeps etcd sending; it is also the most the snapshot call buffers in the agent.
    /// </summary>
    private const int StreamWindow = 2 * 1024 * 1024;

    public async Task<EtcdSnapshot> OpenAsync(NodeSession session, CancellationToken cancellationToken = default)
    {
        var node = session.Node;
        var files = EtcdClientFiles.For(node.Paths);
        var caPem = await ReadNodeFileAsync(session, files.CaCert, cancellationToken);
        var certPem = await ReadNodeFileAsync(session, files.ClientCert, cancellationToken);
        var keyPem = await ReadNodeFileAsync(session, files.ClientKey, cancellationToken);

        X509Certificate2 ca, clientCertificate;
        try
        {
            ca = X509Certificate2.CreateFromPem(caPem);
            clientCertificate = X509Certificate2.CreateFromPem(certPem, keyPem);
        }
        catch (CryptographicException ex)
        {
            throw new NodeOperationException(node.Name, Step, $"the etcd client certificate under {node.Paths.Pki}/etcd cannot be used: {ex.Message}", ex);
        }

        var forward = session.ForwardLocalPort(node.Etcd.ClientPort);
        var tls = new TlsCheck(ca);
        var channel = GrpcChannel.ForAddress($"https://127.0.0.1:{forward.BoundPort}", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectTimeout = CallTimeout,
                InitialHttp2StreamWindowSize = StreamWindow,
                SslOptions = new SslClientAuthenticationOptions
                {
                    ClientCertificates = [clientCertificate],
                    RemoteCertificateValidationCallback = tls.Validate,
                },
            },
            MaxReceiveMessageSize = 8 * 1024 * 1024,
        });

        ValueTask Release()
        {
            channel.Dispose();
            forward.Stop();
            forward.Dispose();
            clientCertificate.Dispose();
            ca.Dispose();
            return ValueTask.CompletedTask;
        }

        try
        {
            var facts = await ReadFactsAsync(channel, node.Name, time.GetUtcNow().UtcDateTime + CallTimeout, cancellationToken);
            var call = new Maintenance.MaintenanceClient(channel).Snapshot(new SnapshotRequest(), cancellationToken: cancellationToken);
            var content = new SnapshotTrailerCheck(new GrpcSnapshotStream(call, node.Name), node.Name);
            return new EtcdSnapshot(content, facts, Release);
        }
        catch (RpcException ex)
        {
            await Release();
            throw new NodeOperationException(node.Name, Step, Describe(ex, node.Etcd.ClientPort, tls.Refusal), ex);
        }
        catch
        {
            await Release();
            throw;
        }
    }

    private static async Task<EtcdFacts> ReadFactsAsync(GrpcChannel channel, string node, DateTime deadline, CancellationToken cancellationToken)
    {
        var status = await new Maintenance.MaintenanceClient(channel)
            .StatusAsync(new StatusRequest(), deadline: deadline, cancellationToken: cancellationToken);
        var members = await new Cluster.ClusterClient(channel)
            .MemberListAsync(new MemberListRequest(), deadline: deadline, cancellationToken: cancellationToken);

        // count_only over the whole key space ("\0" to "\0"), as `etcdctl get "" --prefix --count-only`.
        var everything = ByteString.CopyFrom(0);
        var range = await new KV.KVClient(channel)
            .RangeAsync(new RangeRequest { Key = everything, RangeEnd = everything, CountOnly = true }, deadline: deadline, cancellationToken: cancellationToken);

        return new EtcdFacts(
            node,
            Configuration.EtcdModes.Tunnel,
            members.Members.FirstOrDefault(m => m.ID == status.Header.MemberId)?.Name,
            status.Header.MemberId,
            status.Header.ClusterId,
            range.Header.Revision,
            range.Count,
            status.Version,
            status.DbSize);
    }

    private static async Task<string> ReadNodeFileAsync(NodeSession session, string path, CancellationToken cancellationToken)
    {
        var result = await session.RunAsync(NodeCommands.ReadFile(path), cancellationToken);
        if (!result.Succeeded)
        {
            throw new NodeOperationException(session.Node.Name, Step, $"cannot read {path} on the node: {result.ErrorSummary}");
        }

        return result.Output;
    }

    private static string Describe(RpcException ex, int clientPort, string? tlsRefusal) =>
        tlsRefusal is not null
            ? $"etcd's TLS certificate was refused: {tlsRefusal}"
            : ex.StatusCode switch
            {
                StatusCode.Unavailable => $"etcd does not answer on 127.0.0.1:{clientPort} on the node ({ex.Status.Detail})",
                StatusCode.DeadlineExceeded => $"etcd on 127.0.0.1:{clientPort} did not answer within {CallTimeout.TotalSeconds:0}s",
                _ => $"etcd refused the call: {ex.StatusCode}: {ex.Status.Detail}",
            };

    /// <summary>Trusts the cluster's etcd CA only, and remembers why a certificate was refused.</summary>
    private sealed class TlsCheck(X509Certificate2 ca)
    {
        public string? Refusal { get; private set; }

        public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            if (certificate is null)
            {
                Refusal = "the server sent no certificate";
                return false;
            }

            if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
            {
                Refusal = $"'{certificate.Subject}' is not valid for 127.0.0.1 (etcd's server certificate needs IP:127.0.0.1 in its SANs)";
                return false;
            }

            if (PrivateCaTrust.IsIssuedBy(certificate, ca, out var reason))
            {
                return true;
            }

            Refusal = $"'{certificate.Subject}' is not signed by the etcd CA in the node's PKI ({reason})";
            return false;
        }
    }
}
