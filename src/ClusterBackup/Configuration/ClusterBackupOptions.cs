namespace ClusterBackup.Configuration;

/// <summary>The <c>ClusterBackup</c> section of appsettings.json, as written by the operator.</summary>
internal sealed record ClusterBackupOptions
{
    public const string SectionName = "ClusterBackup";

    public MetricsOptions Metrics { get; init; } = new();

    public StorageOptions Storage { get; init; } = new();

    public CompressionOptions Compression { get; init; } = new();

    public EncryptionOptions Encryption { get; init; } = new();

    public SigningOptions Signing { get; init; } = new();

    public VerifyOptions Verify { get; init; } = new();

    public SchedulerOptions Scheduler { get; init; } = new();

    public CertificatesOptions Certificates { get; init; } = new();

    /// <summary>Keys every cluster inherits; a cluster, then a control plane, may override them.</summary>
    public ClusterOptions Defaults { get; init; } = new();

    public IReadOnlyList<ClusterOptions> Clusters { get; init; } = [];
}

/// <summary>How sets are verified: the local etcd binaries for --deep drills.</summary>
internal sealed record VerifyOptions
{
    public string Etcd { get; init; } = "etcd";

    public string Etcdctl { get; init; } = "etcdctl";

    /// <summary>Whether scheduled verification restores into a throwaway etcd (needs Encryption:IdentityFile).</summary>
    public bool Deep { get; init; }
}

/// <summary>When a certificate in the PKI or the kubeconfigs needs attention.</summary>
internal sealed record CertificatesOptions
{
    /// <summary>Days before expiry from which backup warns, certs exits 1, and the alert fires.</summary>
    public int WarnDays { get; init; } = 30;
}

/// <summary>Where the daemon's schedule lives: this agent alone, or a PostgreSQL database agents share.</summary>
internal sealed record SchedulerOptions
{
    /// <summary>"memory" (default: this agent alone, no database) or "postgres" (agents share one database).</summary>
    public string Store { get; init; } = SchedulerStores.Memory;

    /// <summary>Npgsql connection string, without a password (Passfile=, PGPASSFILE or PGPASSWORD supply it).</summary>
    public string? ConnectionString { get; init; }

    /// <summary>This agent's name in the shared store, logs and build_info; default: the host name. Unique per agent.</summary>
    public string? InstanceName { get; init; }

    /// <summary>Backups and verifications this agent (or one CLI backup) runs at once.</summary>
    public int MaxConcurrentRuns { get; init; } = 4;

    public bool Clustered => Store == SchedulerStores.Postgres;

    /// <summary>The instance name, or the host name when none is set.</summary>
    public string Instance => string.IsNullOrWhiteSpace(InstanceName) ? Environment.MachineName : InstanceName;
}

internal static class SchedulerStores
{
    public const string Memory = "memory";
    public const string Postgres = "postgres";
}

internal sealed record MetricsOptions
{
    /// <summary>host:port the daemon serves GET /metrics and GET /healthz on; empty turns the listener off.</summary>
    public string Listen { get; init; } = "127.0.0.1:9464";
}

internal sealed record StorageOptions
{
    public string Type { get; init; } = "s3";

    public string? Bucket { get; init; }

    public string Prefix { get; init; } = "backups";

    public string? ServiceUrl { get; init; }

    public string Region { get; init; } = "us-east-1";

    public bool ForcePathStyle { get; init; }

    public string? CaFile { get; init; }

    /// <summary>aws-chunked payload signing; null means on for AWS, off for any other endpoint.</summary>
    public bool? ChunkedEncoding { get; init; }

    public int PartSizeMiB { get; init; } = 16;

    /// <summary>Parts uploading at once while the next one fills: memory is (PartsInFlight + 1) × PartSizeMiB per upload.</summary>
    public int PartsInFlight { get; init; } = 2;

    public string? Path { get; init; }

    /// <summary>S3 server-side encryption on top of age: null (none), "AES256" (SSE-S3) or "aws:kms" (SSE-KMS).</summary>
    public string? ServerSideEncryption { get; init; }

    /// <summary>The KMS key for "aws:kms"; the bucket's default key when null.</summary>
    public string? KmsKeyId { get; init; }

    public ObjectLockOptions ObjectLock { get; init; } = new();
}

/// <summary>S3 Object Lock retention set on every uploaded object (the bucket must have Object Lock enabled).</summary>
internal sealed record ObjectLockOptions
{
    /// <summary>null (off), "GOVERNANCE" or "COMPLIANCE".</summary>
    public string? Mode { get; init; }

    public int Days { get; init; }
}

internal static class ServerSideEncryptionTypes
{
    public const string S3 = "AES256";
    public const string Kms = "aws:kms";
}

internal sealed record EncryptionOptions
{
    /// <summary>age X25519 recipients (age1…) every artifact is encrypted to.</summary>
    public IReadOnlyList<string> Recipients { get; init; } = [];

    /// <summary>A file of recipients, one a line, as age -R reads it.</summary>
    public string? RecipientsFile { get; init; }

    /// <summary>Store artifacts unencrypted. Must be set explicitly; a warning is logged at every run.</summary>
    public bool Disabled { get; init; }

    /// <summary>The age identity (secret key) file for download, verify and restore; never needed for backups.</summary>
    public string? IdentityFile { get; init; }
}

/// <summary>The agent's signature on every set (OpenSSH SSHSIG over manifest.json), and the keys trusted when reading.</summary>
internal sealed record SigningOptions
{
    /// <summary>An unencrypted OpenSSH Ed25519 private key (ssh-keygen -t ed25519 -N ''); every set is signed with it.</summary>
    public string? KeyFile { get; init; }

    /// <summary>OpenSSH allowed-signers file (principal cluster-backup); default: the public half of KeyFile.</summary>
    public string? AllowedSignersFile { get; init; }

    /// <summary>Write sets unsigned, and read unsigned sets without --allow-unsigned. Must be set explicitly.</summary>
    public bool Disabled { get; init; }
}

internal sealed record CompressionOptions
{
    /// <summary>zstd level; 1 compresses etcd's data as well as 3 at half the CPU (see the README's table).</summary>
    public int Level { get; init; } = 1;

    /// <summary>zstd worker threads: 0 (default) one per core; 1 compresses on the pipeline's own thread.</summary>
    public int Threads { get; init; }

    /// <summary>The zstd workers to ask for (0: none, single-threaded).</summary>
    public int Workers => (Threads == 0 ? Environment.ProcessorCount : Threads) is var n && n > 1 ? n : 0;
}

internal sealed record ClusterOptions
{
    public string? Name { get; init; }

    public string? Schedule { get; init; }

    /// <summary>Cron schedule of the daemon's verification of the newest set; off when empty.</summary>
    public string? VerifySchedule { get; init; }

    public string TimeZone { get; init; } = "UTC";

    public SshOptions Ssh { get; init; } = new();

    public EtcdOptions Etcd { get; init; } = new();

    public PathOptions Paths { get; init; } = new();

    public RestoreOptions Restore { get; init; } = new();

    public RetentionOptions Retention { get; init; } = new();

    public RetryOptions Retry { get; init; } = new();

    public IReadOnlyList<ControlPlaneOptions> ControlPlanes { get; init; } = [];
}

/// <summary>
/// The daemon's retries of a failed backup: after DelaySeconds, then twice as long after each
/// further failure, Attempts times at most, and never at or after the next scheduled firing.
/// </summary>
internal sealed record RetryOptions
{
    public int Attempts { get; init; } = 3;

    public int DelaySeconds { get; init; } = 300;
}

/// <summary>restic's vocabulary; -1 keeps one set of every period. An empty policy is refused.</summary>
internal sealed record RetentionOptions
{
    public int KeepLast { get; init; }

    public int KeepHourly { get; init; }

    public int KeepDaily { get; init; }

    public int KeepWeekly { get; init; }

    public int KeepMonthly { get; init; }

    public int KeepYearly { get; init; }

    /// <summary>A calendar duration like <c>2d12h</c> or <c>1y6m</c>, counted back from the newest set.</summary>
    public string? KeepWithin { get; init; }

    /// <summary>Sets without a manifest (failed runs), and open uploads, older than this are removed by prune.</summary>
    public int IncompleteGraceHours { get; init; } = 24;
}

internal sealed record ControlPlaneOptions
{
    public string? Name { get; init; }

    public string? Address { get; init; }

    public SshOptions Ssh { get; init; } = new();

    public EtcdOptions Etcd { get; init; } = new();

    public PathOptions Paths { get; init; } = new();

    public RestoreOptions Restore { get; init; } = new();
}

/// <summary>How the restore runs etcdctl on a node.</summary>
internal sealed record RestoreOptions
{
    /// <summary>
    /// The etcdctl command on the node: the host's by default, or a container runtime's, e.g.
    /// <c>docker run --rm --network host -v /etc/kubernetes:/etc/kubernetes -v /var/lib:/var/lib -v /backup:/backup registry.k8s.io/etcd:3.5.15-0 etcdctl</c>.
    /// </summary>
    public string Etcdctl { get; init; } = "etcdctl";
}

internal sealed record SshOptions
{
    public string User { get; init; } = "root";

    public int Port { get; init; } = 22;

    public string? PrivateKeyFile { get; init; }

    public string? KnownHostsFile { get; init; }

    /// <summary>Prefix node commands with <c>sudo -n</c> when the SSH user is not root.</summary>
    public bool Sudo { get; init; }

    public int ConnectTimeoutSeconds { get; init; } = 15;
}

internal sealed record EtcdOptions
{
    public string Mode { get; init; } = EtcdModes.Tunnel;

    public int ClientPort { get; init; } = 2379;

    /// <summary>The etcdctl command on the node, for <c>exec</c> mode.</summary>
    public string Etcdctl { get; init; } = "etcdctl";

    /// <summary>
    /// The zstd command on the node: <c>exec</c> mode compresses the saved snapshot there, so a
    /// sixth of its bytes cross the network. Empty: send it as saved. A node without it sends it as saved.
    /// </summary>
    public string Zstd { get; init; } = "zstd";
}

internal static class EtcdModes
{
    public const string Tunnel = "tunnel";
    public const string Exec = "exec";
}

internal sealed record PathOptions
{
    public string Pki { get; init; } = "/etc/kubernetes/pki";

    public string Manifests { get; init; } = "/etc/kubernetes/manifests";

    /// <summary>Where the kubeconfigs are: its top-level <c>*.conf</c> files are backed up.</summary>
    public string Kubeconfigs { get; init; } = "/etc/kubernetes";

    public string EtcdData { get; init; } = "/var/lib/etcd";

    public string Staging { get; init; } = "/backup";
}
