using System.Text.Json.Nodes;

namespace ClusterBackup.Rig;

/// <summary>
/// A kubeadm-like control plane of one or three nodes: per node an sshd, a PKI copy, a manifests
/// dir with etcd's static pod (<c>etcd.yaml</c>) and a stand-in kubelet that runs it, an etcd data
/// dir and a staging dir. All on loopback, each member on its own ports.
/// </summary>
public sealed class EtcdCluster : IAsyncDisposable
{
    private readonly LocalRig _rig;
    private readonly List<Member> _members = [];

    private EtcdCluster(LocalRig rig, string root)
    {
        _rig = rig;
        Root = root;
    }

    public string Root { get; }

    public IReadOnlyList<Member> Members => _members;

    public string Endpoints => string.Join(',', _members.Select(m => $"https://127.0.0.1:{m.ClientPort}"));

    public static async Task<EtcdCluster> StartAsync(LocalRig rig, string name, int size)
    {
        var root = Path.Combine(rig.Root, name);
        if (Directory.Exists(root))
        {
            // Two tests sharing a name would share the members' directories and ports' files.
            throw new InvalidOperationException($"an etcd cluster named {name} was started before: give each test's cluster a name of its own");
        }

        var cluster = new EtcdCluster(rig, root);
        var ports = Enumerable.Range(1, size).Select(i => (Name: $"{name}-cp{i}", Client: Tools.FreePort(), Peer: Tools.FreePort())).ToList();
        var initial = string.Join(',', ports.Select(p => $"{p.Name}=https://127.0.0.1:{p.Peer}"));
        foreach (var (memberName, client, peer) in ports)
        {
            var nodeRoot = Path.Combine(root, memberName);
            var node = await SshNode.StartAsync(memberName, nodeRoot, rig.ClientKey + ".pub", rig.Pki, rig.Logs);
            var member = new Member(memberName, node, client, peer, Path.Combine(nodeRoot, "etcd-data"), Path.Combine(nodeRoot, "staging"));
            await File.WriteAllTextAsync(Path.Combine(node.ManifestsDirectory, "etcd.yaml"), member.StaticPod(initial));
            member.Kubelet = new StandInKubelet(memberName, node.ManifestsDirectory, rig.Logs);
            cluster._members.Add(member);
        }

        await File.AppendAllLinesAsync(rig.KnownHosts, cluster._members.Select(m => m.Node.KnownHostsLine));
        await cluster.WaitHealthyAsync();
        return cluster;
    }

    public async Task WaitHealthyAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            var health = await EtcdctlAsync(["endpoint", "health"]);
            if (health.ExitCode == 0)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the cluster is not healthy: {health}\n{string.Join('\n', _members.Select(m => m.Kubelet!.Log))}");
            }

            await Task.Delay(300);
        }
    }

    public Task<ToolResult> EtcdctlAsync(IEnumerable<string> arguments, string? endpoints = null) =>
        Tools.RunAsync("etcdctl",
            [$"--endpoints={endpoints ?? Endpoints}", "--command-timeout=10s", $"--cacert={_rig.Pki.EtcdCa}", $"--cert={_rig.Pki.HealthcheckCert}", $"--key={_rig.Pki.HealthcheckKey}", .. arguments],
            new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });

    /// <summary>A configuration with this cluster's nodes as control planes, each with its own ports and paths.</summary>
    public JsonObject Config(string clusterName)
    {
        var config = _rig.Config("moto", clusterName, "tunnel", _members[0].Node);
        config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"] = new JsonArray(_members.Select(m => (JsonNode)new JsonObject
        {
            ["Name"] = m.Name,
            ["Address"] = "127.0.0.1",
            ["Ssh"] = new JsonObject { ["Port"] = m.Node.Port },
            ["Etcd"] = new JsonObject { ["ClientPort"] = m.ClientPort },
            ["Paths"] = new JsonObject
            {
                ["Pki"] = m.Node.PkiDirectory, ["Manifests"] = m.Node.ManifestsDirectory, ["Kubeconfigs"] = m.Node.KubeconfigDirectory, ["EtcdData"] = m.DataDirectory, ["Staging"] = m.StagingDirectory,
            },
        }).ToArray());
        return config;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var member in _members)
        {
            if (member.Kubelet is not null)
            {
                await member.Kubelet.DisposeAsync();
            }

            await member.Node.DisposeAsync();
        }
    }

    public sealed class Member(string name, SshNode node, int clientPort, int peerPort, string dataDirectory, string stagingDirectory)
    {
        public string Name { get; } = name;

        public SshNode Node { get; } = node;

        public int ClientPort { get; } = clientPort;

        public int PeerPort { get; } = peerPort;

        public string DataDirectory { get; } = dataDirectory;

        public string StagingDirectory { get; } = stagingDirectory;

        public StandInKubelet? Kubelet { get; set; }

        public string Endpoint => $"https://127.0.0.1:{ClientPort}";

        /// <summary>Corrupts the member's database and crashes it: from now on the kubelet's restarts fail (a crash loop).</summary>
        public async Task CorruptAsync()
        {
            await Kubelet!.CrashAsync();
            await File.WriteAllBytesAsync(Path.Combine(DataDirectory, "member", "snap", "db"), new byte[8192]);
        }

        /// <summary>etcd's static pod as kubeadm writes it (only the parts a restore reads and the kubelet runs).</summary>
        public string StaticPod(string initialCluster)
        {
            var pki = Node.PkiDirectory + "/etcd";
            string[] flags =
            [
                $"--advertise-client-urls=https://127.0.0.1:{ClientPort}",
                $"--cert-file={pki}/server.crt", $"--key-file={pki}/server.key", $"--trusted-ca-file={pki}/ca.crt", "--client-cert-auth=true",
                $"--data-dir={DataDirectory}",
                $"--initial-advertise-peer-urls=https://127.0.0.1:{PeerPort}",
                $"--initial-cluster={initialCluster}",
                $"--listen-client-urls=https://127.0.0.1:{ClientPort}",
                $"--listen-peer-urls=https://127.0.0.1:{PeerPort}",
                $"--name={Name}",
                $"--peer-cert-file={pki}/peer.crt", $"--peer-key-file={pki}/peer.key", $"--peer-trusted-ca-file={pki}/ca.crt", "--peer-client-cert-auth=true",
                "--logger=zap", "--log-outputs=stderr",
            ];
            return $"""
                apiVersion: v1
                kind: Pod
                metadata:
                  name: etcd-{Name}
                  namespace: kube-system
                spec:
                  containers:
                  - command:
                    - etcd
                {string.Join('\n', flags.Select(f => "    - " + f))}
                    image: registry.k8s.io/etcd:3.4.23-0
                    name: etcd

                """;
        }
    }
}
