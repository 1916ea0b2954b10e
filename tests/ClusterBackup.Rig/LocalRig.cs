using System.Text.Json.Nodes;

namespace ClusterBackup.Rig;

/// <summary>
/// Everything a backup needs, real and on loopback: a kubeadm-shaped PKI, a TLS etcd member, two
/// sshd "control planes" in front of it, moto_server and s3rver. One place starts and stops them
/// all, keeps their logs, and writes configurations pointing at them.
/// </summary>
public sealed class LocalRig : IAsyncDisposable
{
    public const string Bucket = "cluster-backups";

    /// <summary>A non-root user with passwordless sudo that tests/setup makes, for <c>Ssh.Sudo</c>.</summary>
    public const string SudoUser = "cluster-backup-sudo";

    /// <summary>The private dirs the agent makes on a node (all nodes are this machine) for snapshots and uploads.</summary>
    public static HashSet<string> NodeTempDirectories() =>
        Directory.EnumerateDirectories("/var/tmp", "cluster-backup.*").ToHashSet();

    /// <summary>The node temp dirs made since <paramref name="before"/>, once they are gone or 30 seconds have passed.</summary>
    public static async Task<IReadOnlyCollection<string>> NodeTempDirectoriesLeftAsync(HashSet<string> before)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (NodeTempDirectories().Except(before).Any() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }

        return NodeTempDirectories().Except(before).ToList();
    }

    private LocalRig(string root)
    {
        Root = root;
        Logs = Path.Combine(root, "logs");
    }

    public string Root { get; }

    public string Logs { get; }

    public KubeadmPki Pki { get; private set; } = null!;

    public EtcdServer Etcd { get; private set; } = null!;

    public SshNode Node1 { get; private set; } = null!;

    public SshNode Node2 { get; private set; } = null!;

    public S3Server Moto { get; private set; } = null!;

    public S3Server S3rver { get; private set; } = null!;

    /// <summary>The private key the agent logs in with.</summary>
    public string ClientKey => Path.Combine(Root, "id_ed25519");

    /// <summary>known_hosts with both nodes' host keys.</summary>
    public string KnownHosts => Path.Combine(Root, "known_hosts");

    /// <summary>The agent's signing key (ssh-keygen -t ed25519 -N ''), as the package generates it.</summary>
    public string SigningKey => Path.Combine(Root, "signing_ed25519");

    /// <summary>An OpenSSH allowed-signers file trusting <see cref="SigningKey"/> for the principal cluster-backup.</summary>
    public string AllowedSigners => Path.Combine(Root, "allowed_signers");

    public IEnumerable<SshNode> Nodes => [Node1, Node2];

    /// <summary>The age identity (secret key) file, made by age-keygen; backups are encrypted to its recipient.</summary>
    public string AgeIdentityFile => Path.Combine(Root, "age-key.txt");

    public string AgeRecipient { get; private set; } = null!;

    public static async Task<LocalRig> StartAsync(string? root = null)
    {
        root ??= Path.Combine(Path.GetTempPath(), $"cluster-backup-rig-{Guid.NewGuid():N}"[..32]);
        Directory.CreateDirectory(root);
        var rig = new LocalRig(root);
        try
        {
            await rig.StartAllAsync();
            return rig;
        }
        catch
        {
            await rig.DisposeAsync();
            throw;
        }
    }

    private async Task StartAllAsync()
    {
        foreach (var (key, value) in S3Server.Credentials)
        {
            Environment.SetEnvironmentVariable(key, value);
        }

        var motoTask = S3Server.StartMotoAsync(Logs);
        var s3rverTask = S3Server.StartS3rverAsync(Path.Combine(Root, "s3rver"), Logs);
        Pki = await KubeadmPki.CreateAsync(Path.Combine(Root, "pki"));
        await Tools.CheckAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-C", "cluster-backup", "-f", ClientKey);
        await Tools.CheckAsync("age-keygen", "-o", AgeIdentityFile);
        await Tools.CheckAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-C", "cluster-backup", "-f", SigningKey);
        await File.WriteAllTextAsync(AllowedSigners, $"cluster-backup namespaces=\"cluster-backup\" {await File.ReadAllTextAsync(SigningKey + ".pub")}");
        AgeRecipient = (await Tools.CheckAsync("age-keygen", "-y", AgeIdentityFile)).Trim();
        Etcd = await EtcdServer.StartAsync("cp1", Path.Combine(Root, "etcd"), Logs, Pki);
        Node1 = await SshNode.StartAsync("cp1", Path.Combine(Root, "cp1"), ClientKey + ".pub", Pki, Logs);
        Node2 = await SshNode.StartAsync("cp2", Path.Combine(Root, "cp2"), ClientKey + ".pub", Pki, Logs);
        await File.WriteAllLinesAsync(KnownHosts, Nodes.Select(n => n.KnownHostsLine));
        Moto = await motoTask;
        S3rver = await s3rverTask;
        await Moto.CreateBucketAsync(Bucket);
        await S3rver.CreateBucketAsync(Bucket);
    }

    /// <summary>
    /// One more node in front of the rig's etcd, its host key in <see cref="KnownHosts"/>, whose
    /// <c>/var/tmp</c> is a tmpfs of <paramref name="varTmpSize"/> (<c>mount -o size=</c>); the caller disposes it.
    /// </summary>
    public async Task<SshNode> StartNodeWithVarTmpAsync(string name, string varTmpSize)
    {
        var node = await SshNode.StartAsync(name, Path.Combine(Root, name), ClientKey + ".pub", Pki, Logs, varTmpSize: varTmpSize);
        await File.AppendAllLinesAsync(KnownHosts, [node.KnownHostsLine]);
        return node;
    }

    /// <summary>Logs of every server, for a failing test's message.</summary>
    public string AllLogs() => string.Join('\n', new[]
    {
        Etcd?.Log, Node1?.Log, Node2?.Log, Moto?.Log, S3rver?.Log,
    }.Where(l => l is not null));

    /// <summary>
    /// A configuration with one cluster whose control planes are the given nodes (all in front of
    /// the rig's etcd), storing into <paramref name="storage"/>: "moto", "s3rver" or a directory path.
    /// </summary>
    public JsonObject Config(string storage, string cluster = "test", string mode = "tunnel", params SshNode[] nodes)
    {
        nodes = nodes.Length == 0 ? [Node1, Node2] : nodes;
        var storageNode = storage switch
        {
            "moto" => S3Storage(Moto),
            "s3rver" => S3Storage(S3rver),
            _ => new JsonObject { ["Type"] = "filesystem", ["Path"] = storage },
        };
        return new JsonObject
        {
            ["ClusterBackup"] = new JsonObject
            {
                ["Storage"] = storageNode,
                ["Encryption"] = new JsonObject { ["Recipients"] = new JsonArray(AgeRecipient) },
                ["Signing"] = new JsonObject { ["KeyFile"] = SigningKey, ["AllowedSignersFile"] = AllowedSigners },
                ["Defaults"] = new JsonObject
                {
                    ["Ssh"] = new JsonObject
                    {
                        ["User"] = Environment.UserName,
                        ["PrivateKeyFile"] = ClientKey,
                        ["KnownHostsFile"] = KnownHosts,
                        ["ConnectTimeoutSeconds"] = 10,
                    },
                    ["Etcd"] = new JsonObject { ["Mode"] = mode, ["ClientPort"] = Etcd.ClientPort },
                    ["Retention"] = new JsonObject { ["KeepLast"] = 100 },
                },
                ["Clusters"] = new JsonArray(new JsonObject
                {
                    ["Name"] = cluster,
                    ["ControlPlanes"] = new JsonArray(nodes.Select(ControlPlane).ToArray<JsonNode?>()),
                }),
            },
        };
    }

    /// <summary>A relay in front of moto_server, slowed so that a test can cut an upload midway.</summary>
    public TcpRelay SlowMotoRelay() => new TcpRelay(Moto.Port, bytesPerSecond: 2_000_000).Start();

    /// <summary>A one-node tunnel-mode configuration storing into moto_server through <paramref name="relay"/>, with the identity to verify.</summary>
    public JsonObject ConfigThrough(TcpRelay relay, string cluster)
    {
        var config = Config("moto", cluster, "tunnel", Node1);
        config["ClusterBackup"]!["Storage"]!["ServiceUrl"] = relay.Endpoint;
        config["ClusterBackup"]!["Encryption"]!["IdentityFile"] = AgeIdentityFile;
        return config;
    }

    public static JsonObject ControlPlane(SshNode node) => new()
    {
        ["Name"] = node.Name,
        ["Address"] = "127.0.0.1",
        ["Ssh"] = new JsonObject { ["Port"] = node.Port },
        ["Paths"] = new JsonObject { ["Pki"] = node.PkiDirectory, ["Manifests"] = node.ManifestsDirectory, ["Kubeconfigs"] = node.KubeconfigDirectory },
    };

    private static JsonObject S3Storage(S3Server server) => new()
    {
        ["Type"] = "s3",
        ["Bucket"] = Bucket,
        ["Prefix"] = "backups",
        ["ServiceUrl"] = server.Endpoint,
        ["ForcePathStyle"] = true,
        ["Region"] = S3Server.Region,
        ["PartSizeMiB"] = 5,
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var server in new IAsyncDisposable?[] { Node1, Node2, Etcd, Moto, S3rver })
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }
        }
    }
}
