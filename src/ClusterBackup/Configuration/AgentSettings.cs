using ClusterBackup.Encryption;
using ClusterBackup.Signing;

namespace ClusterBackup.Configuration;

/// <summary>The configuration after inheritance (Defaults → cluster → control plane) and validation.</summary>
internal sealed record AgentSettings(
    string ConfigPath,
    MetricsOptions Metrics,
    StorageOptions Storage,
    CompressionOptions Compression,
    EncryptionSettings Encryption,
    SigningSettings Signing,
    VerifyOptions Verify,
    SchedulerOptions Scheduler,
    CertificatesOptions Certificates,
    LogLevels LogLevels,
    IReadOnlyList<ClusterSettings> Clusters)
{
    public ClusterSettings? FindCluster(string name) =>
        Clusters.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.Ordinal));
}

/// <summary>The recipients artifacts are encrypted to; empty only when encryption is explicitly disabled.</summary>
internal sealed record EncryptionSettings(IReadOnlyList<AgeRecipient> Recipients, string? IdentityFile)
{
    public bool Disabled => Recipients.Count == 0;
}

/// <summary>
/// The key sets are signed with (null when signing is disabled, or for commands that only read and
/// have an allowed-signers file), and the keys trusted when reading (null: none configured).
/// </summary>
internal sealed record SigningSettings(SigningKey? Key, AllowedSigners? Trusted, bool Disabled)
{
    /// <summary>What reading accepts: unsigned sets when asked (--allow-unsigned) or when signing is disabled.</summary>
    public SignaturePolicy ReadPolicy(bool allowUnsigned = false) => new(Trusted, allowUnsigned || Disabled);
}

internal sealed record ClusterSettings(
    string Name,
    CronSchedule? Schedule,
    CronSchedule? VerifySchedule,
    TimeZoneInfo TimeZone,
    IReadOnlyList<ControlPlaneSettings> ControlPlanes,
    RetentionPolicy Retention,
    TimeSpan IncompleteGrace,
    RetryPolicy Retry)
{
    /// <summary>Whether a scheduled backup was missed: no set at all, or the schedule fired since the newest one started.</summary>
    public bool MissedSchedule(DateTimeOffset? newest, DateTimeOffset now) =>
        newest is not { } started || (Schedule?.NextAfter(started) is { } next && next <= now);
}

internal sealed record ControlPlaneSettings(
    string Name,
    string Address,
    SshOptions Ssh,
    EtcdOptions Etcd,
    PathOptions Paths,
    RestoreOptions Restore);
