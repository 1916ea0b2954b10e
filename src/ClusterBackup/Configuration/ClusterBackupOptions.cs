namespace ClusterBackup.Configuration;

/// <summary>The <c>ClusterBackup</c> section of appsettings.json, as written by the operator.</summary>
internal sealed class ClusterBackupOptions
{
    public const string SectionName = "ClusterBackup";

    public MetricsOptions Metrics { get; set; } = new();

    public StorageOptions Storage { get; set; } = new();

    public CompressionOptions Compression { get; set; } = new();

    public EncryptionOptions Encryption { get; set; } = new();

    public VerifyOptions Verify { get; set; } = new();

    /// <summary>Keys every cluster inherits; a cluster, then a control plane, may override them.</summary>
    public ClusterOptions Defaults { get; set; } = new();

    public List<ClusterOptions> Clusters { get; set; } = [];
}

/// <summary>How sets are verified: the local etcd binaries for --deep drills.</summary>
internal sealed class VerifyOptions
{
    public string Etcd { get; set; } = "etcd";

    public string Etcdctl { get; set; } = "etcdctl";

    /// <summary>Whether scheduled verification restores into a throwaway etcd (needs Encryption:IdentityFile).</summary>
    public bool Deep { get; set; }
}

internal sealed class MetricsOptions
{
    /// <summary>host:port the daemon serves GET /metrics and GET /healthz on; empty turns the listener off.</summary>
    public string Listen { get; set; } = "127.0.0.1:9464";
}

internal sealed class StorageOptions
{
    public string Type { get; set; } = "s3";

    public string? Bucket { get; set; }

    public string Prefix { get; set; } = "backups";

    public string? ServiceUrl { get; set; }

    public string Region { get; set; } = "us-east-1";

    public bool ForcePathStyle { get; set; }

    public string? CaFile { get; set; }

    /// <summary>aws-chunked payload signing; null means on for AWS, off for any other endpoint.</summary>
    public bool? ChunkedEncoding { get; set; }

    public int PartSizeMiB { get; set; } = 16;

    public string? Path { get; set; }

    /// <summary>S3 server-side encryption on top of age: null (none), "AES256" (SSE-S3) or "aws:kms" (SSE-KMS).</summary>
    public string? ServerSideEncryption { get; set; }

    /// <summary>The KMS key for "aws:kms"; the bucket's default key when null.</summary>
    public string? KmsKeyId { get; set; }

    public ObjectLockOptions ObjectLock { get; set; } = new();
}

/// <summary>S3 Object Lock retention set on every uploaded object (the bucket must have Object Lock enabled).</summary>
internal sealed class ObjectLockOptions
{
    /// <summary>null (off), "GOVERNANCE" or "COMPLIANCE".</summary>
    public string? Mode { get; set; }

    public int Days { get; set; }
}

internal static class ServerSideEncryptionTypes
{
    public const string S3 = "AES256";
    public const string Kms = "aws:kms";
}

internal sealed class EncryptionOptions
{
    /// <summary>age X25519 recipients (age1…) every artifact is encrypted to.</summary>
    public List<string> Recipients { get; set; } = [];

    /// <summary>A file of recipients, one a line, as age -R reads it.</summary>
    public string? RecipientsFile { get; set; }

    /// <summary>Store artifacts unencrypted. Must be set explicitly; a warning is logged at every run.</summary>
    public bool Disabled { get; set; }

    /// <summary>The age identity (secret key) file for download, verify and restore; never needed for backups.</summary>
    public string? IdentityFile { get; set; }
}

internal sealed class CompressionOptions
{
    public int Level { get; set; } = 3;
}

internal sealed class ClusterOptions
{
    public string? Name { get; set; }

    public string? Schedule { get; set; }

    /// <summary>Cron schedule of the daemon's verification of the newest set; off when empty.</summary>
    public string? VerifySchedule { get; set; }

    public string TimeZone { get; set; } = "UTC";

    public SshOptions Ssh { get; set; } = new();

    public EtcdOptions Etcd { get; set; } = new();

    public PathOptions Paths { get; set; } = new();

    public RestoreOptions Restore { get; set; } = new();

    public RetentionOptions Retention { get; set; } = new();

    public List<ControlPlaneOptions> ControlPlanes { get; set; } = [];
}

/// <summary>restic's vocabulary; -1 keeps one set of every period. An empty policy is refused.</summary>
internal sealed class RetentionOptions
{
    public int KeepLast { get; set; }

    public int KeepHourly { get; set; }

    public int KeepDaily { get; set; }

    public int KeepWeekly { get; set; }

    public int KeepMonthly { get; set; }

    public int KeepYearly { get; set; }

    /// <summary>A calendar duration like <c>2d12h</c> or <c>1y6m</c>, counted back from the newest set.</summary>
    public string? KeepWithin { get; set; }

    /// <summary>Sets without a manifest (failed runs), and open uploads, older than this are removed by prune.</summary>
    public int IncompleteGraceHours { get; set; } = 24;
}

internal sealed class ControlPlaneOptions
{
    public string? Name { get; set; }

    public string? Address { get; set; }

    public SshOptions Ssh { get; set; } = new();

    public EtcdOptions Etcd { get; set; } = new();

    public PathOptions Paths { get; set; } = new();

    public RestoreOptions Restore { get; set; } = new();
}

/// <summary>How the restore runs etcdctl on a node.</summary>
internal sealed class RestoreOptions
{
    /// <summary>
    /// The etcdctl command on the node: the host's by default, or a container runtime's, e.g.
    /// <c>docker run --rm --network host -v /etc/kubernetes:/etc/kubernetes -v /var/lib:/var/lib -v /backup:/backup registry.k8s.io/etcd:3.5.15-0 etcdctl</c>.
    /// </summary>
    public string Etcdctl { get; set; } = "etcdctl";
}

internal sealed class SshOptions
{
    public string User { get; set; } = "root";

    public int Port { get; set; } = 22;

    public string? PrivateKeyFile { get; set; }

    public string? KnownHostsFile { get; set; }

    /// <summary>Prefix node commands with <c>sudo -n</c> when the SSH user is not root.</summary>
    public bool Sudo { get; set; }

    public int ConnectTimeoutSeconds { get; set; } = 15;
}

internal sealed class EtcdOptions
{
    public string Mode { get; set; } = EtcdModes.Tunnel;

    public int ClientPort { get; set; } = 2379;

    /// <summary>The etcdctl command on the node, for <c>exec</c> mode.</summary>
    public string Etcdctl { get; set; } = "etcdctl";
}

internal static class EtcdModes
{
    public const string Tunnel = "tunnel";
    public const string Exec = "exec";
}

internal sealed class PathOptions
{
    public string Pki { get; set; } = "/etc/kubernetes/pki";

    public string Manifests { get; set; } = "/etc/kubernetes/manifests";

    public string EtcdData { get; set; } = "/var/lib/etcd";

    public string Staging { get; set; } = "/backup";
}
