namespace ClusterBackup.Rig;

/// <summary>
/// A control-plane "node": a real sshd on loopback (key auth only, its own host key) in front of
/// this machine, with the node's PKI and static-pod manifests in a directory of its own.
/// </summary>
public sealed class SshNode : IAsyncDisposable
{
    private readonly ExternalProcess _process;

    private SshNode(ExternalProcess process, string name, int port, string root, string hostPublicKey)
    {
        _process = process;
        Name = name;
        Port = port;
        Root = root;
        HostPublicKey = hostPublicKey;
    }

    public string Name { get; }

    public int Port { get; }

    public string Root { get; }

    public string PkiDirectory => Path.Combine(Root, "pki");

    public string ManifestsDirectory => Path.Combine(Root, "manifests");

    /// <summary>As /etc/kubernetes: the kubeconfigs at its top (pki/ and manifests/ are below it).</summary>
    public string KubeconfigDirectory => Root;

    /// <summary>"ssh-ed25519 AAAA…", as in the host's .pub file.</summary>
    public string HostPublicKey { get; }

    public string KnownHostsLine => $"[127.0.0.1]:{Port} {HostPublicKey}";

    public string Log => _process.Tail();

    /// <summary>
    /// Starts the node's sshd. With <paramref name="varTmpSize"/> (a tmpfs size, such as "4m"), sshd
    /// runs in a mount namespace of its own where /var/tmp is a tmpfs of that size: a node whose temp
    /// dir is short of space, while the rest of this machine is not.
    /// </summary>
    public static async Task<SshNode> StartAsync(string name, string root, string authorizedKeysFile, KubeadmPki pki, string logDirectory, string? varTmpSize = null)
    {
        Directory.CreateDirectory(root);
        Directory.CreateDirectory("/run/sshd"); // privilege separation dir sshd insists on
        var hostKey = Path.Combine(root, "ssh_host_ed25519_key");
        if (!File.Exists(hostKey))
        {
            await Tools.CheckAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-C", name, "-f", hostKey);
        }

        await pki.CopyToAsync(Path.Combine(root, "pki"));
        await pki.WriteKubeconfigsAsync(root, name);
        var manifests = Path.Combine(root, "manifests");
        Directory.CreateDirectory(manifests);
        await File.WriteAllTextAsync(Path.Combine(manifests, "etcd.yaml"), $"# static pod of {name}\nkind: Pod\nmetadata:\n  name: etcd-{name}\n");
        await File.WriteAllTextAsync(Path.Combine(manifests, "kube-apiserver.yaml"), $"kind: Pod\nmetadata:\n  name: kube-apiserver-{name}\n");

        var port = Tools.FreePort();
        var config = Path.Combine(root, "sshd_config");
        // SHLVL=1: bash, started by sshd for every command, then skips the user's ~/.bashrc (it sources it
        // only at level 1 under sshd). A node's login shell is the operator's; this machine's root .bashrc
        // (pyenv init) took 0.64 s per command, which made every test's SSH command a second slower.
        await File.WriteAllTextAsync(config, $"""
            Port {port}
            ListenAddress 127.0.0.1
            HostKey {hostKey}
            PidFile {Path.Combine(root, "sshd.pid")}
            AuthorizedKeysFile {authorizedKeysFile}
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            StrictModes no
            UsePAM no
            LogLevel VERBOSE
            Subsystem sftp internal-sftp
            SetEnv SHLVL=1

            """);
        var process = varTmpSize is null
            ? ExternalProcess.Start($"sshd-{name}", "/usr/sbin/sshd", ["-D", "-e", "-f", config], logDirectory)
            : ExternalProcess.Start($"sshd-{name}", "unshare",
                ["--mount", "--propagation", "private", "sh", "-c", $"mount -t tmpfs -o size={varTmpSize},mode=1777 tmpfs /var/tmp && exec /usr/sbin/sshd -D -e -f \"$0\"", config],
                logDirectory);
        await process.WaitForPortAsync(port);
        var publicKey = (await File.ReadAllTextAsync(hostKey + ".pub")).Trim();
        var parts = publicKey.Split(' ');
        return new SshNode(process, name, port, root, $"{parts[0]} {parts[1]}");
    }

    /// <summary>The node's /var/tmp as this machine sees it (through sshd's mount namespace, when it has one).</summary>
    public string VarTmp => $"/proc/{_process.Id}/root/var/tmp";

    /// <summary>Resizes the tmpfs a node started with a <c>varTmpSize</c> has as /var/tmp.</summary>
    public Task ResizeVarTmpAsync(string size) =>
        Tools.CheckAsync("nsenter", "-t", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "-m", "mount", "-o", $"remount,size={size}", "/var/tmp");

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
