namespace ClusterBackup.Rig;

/// <summary>A real single-member etcd on loopback: TLS with client-cert auth (as kubeadm runs it), or plain HTTP.</summary>
public sealed class EtcdServer : IAsyncDisposable
{
    private readonly ExternalProcess _process;
    private readonly KubeadmPki? _pki;

    private EtcdServer(ExternalProcess process, string name, int clientPort, int peerPort, string dataDirectory, KubeadmPki? pki)
    {
        _process = process;
        Name = name;
        ClientPort = clientPort;
        PeerPort = peerPort;
        DataDirectory = dataDirectory;
        _pki = pki;
    }

    private int _bulkWritten;

    public string Name { get; }

    public int ClientPort { get; }

    public int PeerPort { get; }

    public string DataDirectory { get; }

    public string Endpoint => $"{(_pki is null ? "http" : "https")}://127.0.0.1:{ClientPort}";

    public string Log => _process.Tail();

    /// <summary>Starts etcd. With a PKI it serves TLS and requires client certificates.</summary>
    public static async Task<EtcdServer> StartAsync(string name, string dataDirectory, string logDirectory, KubeadmPki? pki)
    {
        var clientPort = Tools.FreePort();
        var peerPort = Tools.FreePort();
        var scheme = pki is null ? "http" : "https";
        var arguments = new List<string>
        {
            "--name", name, "--data-dir", dataDirectory,
            "--listen-client-urls", $"{scheme}://127.0.0.1:{clientPort}",
            "--advertise-client-urls", $"{scheme}://127.0.0.1:{clientPort}",
            "--listen-peer-urls", $"{scheme}://127.0.0.1:{peerPort}",
            "--initial-advertise-peer-urls", $"{scheme}://127.0.0.1:{peerPort}",
            "--initial-cluster", $"{name}={scheme}://127.0.0.1:{peerPort}",
            "--logger", "zap", "--log-outputs", "stderr", "--quota-backend-bytes", "8589934592",
        };
        if (pki is not null)
        {
            arguments.AddRange([
                "--client-cert-auth", "--trusted-ca-file", pki.EtcdCa, "--cert-file", pki.EtcdServerCert, "--key-file", pki.EtcdServerKey,
                "--peer-client-cert-auth", "--peer-trusted-ca-file", pki.EtcdCa, "--peer-cert-file", pki.EtcdPeerCert, "--peer-key-file", pki.EtcdPeerKey,
            ]);
        }

        var process = ExternalProcess.Start($"etcd-{name}", "etcd", arguments, logDirectory);
        var server = new EtcdServer(process, name, clientPort, peerPort, dataDirectory, pki);
        await process.WaitUntilAsync(async () => (await server.EtcdctlAsync(["endpoint", "health"])).ExitCode == 0, "endpoint health");
        return server;
    }

    public Task<ToolResult> EtcdctlAsync(IEnumerable<string> arguments, string? stdinFile = null)
    {
        var all = new List<string> { $"--endpoints={Endpoint}", "--command-timeout=20s" };
        if (_pki is not null)
        {
            all.AddRange([$"--cacert={_pki.EtcdCa}", $"--cert={_pki.HealthcheckCert}", $"--key={_pki.HealthcheckKey}"]);
        }

        all.AddRange(arguments);
        return Tools.RunAsync("etcdctl", all, new Dictionary<string, string> { ["ETCDCTL_API"] = "3" }, stdinFile);
    }

    public async Task PutAsync(string key, string value)
    {
        var result = await EtcdctlAsync(["put", key, value]);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"etcdctl put failed: {result}\n{Log}");
        }
    }

    /// <summary>Puts a value read from a file (for values too large for an argument).</summary>
    public async Task PutFileAsync(string key, string file)
    {
        var result = await EtcdctlAsync(["put", key], stdinFile: file);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"etcdctl put failed: {result}\n{Log}");
        }
    }

    /// <summary>
    /// About 8 MB of incompressible values under <c>/registry/bulk/</c>, so a snapshot takes several
    /// 5 MiB multipart parts. Written once per server: every put would add a revision the database
    /// keeps, and every later snapshot would carry it.
    /// </summary>
    public async Task PutBulkAsync()
    {
        if (Interlocked.Exchange(ref _bulkWritten, 1) == 1)
        {
            return;
        }

        var big = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-big-").FullName, "value");
        for (var i = 0; i < 7; i++)
        {
            await File.WriteAllTextAsync(big, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(900_000)));
            await PutFileAsync($"/registry/bulk/{i}", big);
        }
    }

    /// <summary>Every key under a prefix with its value, via etcdctl's JSON output (base64 in, decoded out).</summary>
    public async Task<IReadOnlyDictionary<string, string>> GetPrefixAsync(string prefix)
    {
        var result = await EtcdctlAsync(["get", prefix, "--prefix", "-w", "json"]);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"etcdctl get failed: {result}\n{Log}");
        }

        using var json = System.Text.Json.JsonDocument.Parse(result.Output);
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        if (json.RootElement.TryGetProperty("kvs", out var kvs))
        {
            foreach (var kv in kvs.EnumerateArray())
            {
                pairs[Decode(kv.GetProperty("key").GetString())] = Decode(kv.GetProperty("value").GetString());
            }
        }

        return pairs;
    }

    private static string Decode(string? base64) =>
        System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(base64 ?? string.Empty));

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
