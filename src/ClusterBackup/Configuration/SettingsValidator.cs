using System.Text.RegularExpressions;

namespace ClusterBackup.Configuration;

/// <summary>What the configuration is loaded for: <c>run</c> needs more of it than the other commands.</summary>
internal enum ConfigurationUse
{
    /// <summary>Commands that read sets (list, verify, download, restore, prune, config check).</summary>
    Commands,

    /// <summary><c>backup</c>: it writes sets, so it signs them.</summary>
    Backup,

    /// <summary><c>run</c>: it writes sets on a schedule.</summary>
    Daemon,
}

/// <summary>
/// The one validator: every rule the configuration must satisfy, each problem reported by its key,
/// all of them at once. Keys and value types come first (<see cref="CheckKeys"/>: the binder needs
/// them right); then every rule of the bound options, of each cluster after inheritance, of
/// retention, of encryption (recipients parsed here), and what the daemon needs.
/// </summary>
internal static partial class SettingsValidator
{
    public const int MinPartSizeMiB = 5;
    public const int MaxPartSizeMiB = 5120;

    /// <summary>Unknown keys and values of the wrong type, by full key.</summary>
    public static IEnumerable<string> CheckKeys(Microsoft.Extensions.Configuration.IConfigurationSection root) =>
        ConfigurationSchema.Check(root, typeof(ClusterBackupOptions));

    /// <summary>Every rule; <paramref name="encryption"/> is what the Encryption section resolves to when there are no problems.</summary>
    public static IReadOnlyList<string> Validate(
        ClusterBackupOptions options, IReadOnlyList<ResolvedCluster> clusters, ConfigurationUse use, out EncryptionSettings encryption, out SigningSettings signing)
    {
        var problems = Rules(options, clusters, use).ToList();
        encryption = ValidateEncryption(options.Encryption, problems);
        signing = ValidateSigning(options.Signing, use, problems);
        return problems;
    }

    private static IEnumerable<string> Rules(ClusterBackupOptions options, IReadOnlyList<ResolvedCluster> clusters, ConfigurationUse use)
    {
        const string root = ClusterBackupOptions.SectionName;
        foreach (var problem in ValidateStorage(options.Storage, $"{root}:Storage"))
        {
            yield return problem;
        }

        if (!string.IsNullOrEmpty(options.Metrics.Listen) && !TryParseListen(options.Metrics.Listen, out _, out _))
        {
            yield return $"{root}:Metrics:Listen: {Redaction.Quote(options.Metrics.Listen)} is not host:port (e.g. 127.0.0.1:9464, or 0.0.0.0:9464 for every interface)";
        }

        if (options.Verify.Deep && string.IsNullOrEmpty(options.Encryption.IdentityFile) && !options.Encryption.Disabled)
        {
            yield return $"{root}:Verify:Deep: scheduled deep verification decrypts, so it needs Encryption:IdentityFile";
        }

        if (options.Compression.Level is < 1 or > 19)
        {
            yield return $"{root}:Compression:Level: {options.Compression.Level} is outside 1..19";
        }

        if (options.Compression.Threads is < 0 or > 64)
        {
            yield return $"{root}:Compression:Threads: {options.Compression.Threads} is outside 0..64 (0: one per core)";
        }

        if (options.Certificates.WarnDays is < 1 or > 3650)
        {
            yield return $"{root}:Certificates:WarnDays: {options.Certificates.WarnDays} is outside 1..3650";
        }

        foreach (var problem in ValidateScheduler(options.Scheduler, $"{root}:Scheduler"))
        {
            yield return problem;
        }

        if (clusters.Count == 0)
        {
            yield return $"{root}:Clusters: no cluster is configured";
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var missingFiles = new List<(string Where, string Key, string File)>();
        foreach (var cluster in clusters)
        {
            var name = cluster.Options.Name;
            var where = string.IsNullOrWhiteSpace(name) ? cluster.Path : $"{cluster.Path} (cluster {Redaction.Quote(name)})";
            if (string.IsNullOrWhiteSpace(name))
            {
                yield return $"{cluster.Path}:Name: is required";
            }
            else if (!SafeName().IsMatch(name) || Redaction.LooksSecret(name))
            {
                yield return $"{where}:Name: {Redaction.Quote(name)} may contain only letters, digits, '.', '_' and '-', and must not be a key";
            }
            else if (!seen.Add(name))
            {
                yield return $"{where}:Name: {Redaction.Quote(name)} is used by another cluster";
            }

            foreach (var problem in ValidateCluster(cluster, where, missingFiles))
            {
                yield return problem;
            }

            if (use == ConfigurationUse.Daemon && string.IsNullOrWhiteSpace(cluster.Options.Schedule))
            {
                yield return $"{where}:Schedule: is required by 'run' (e.g. \"0 */6 * * *\")";
            }
        }

        // One line per missing file, not one per control plane inheriting it.
        foreach (var group in missingFiles.GroupBy(m => (m.Key, m.File)))
        {
            var first = group.First();
            var others = group.Count() - 1;
            yield return $"{first.Where}:Ssh:{first.Key}: {Redaction.Quote(first.File)} does not exist" +
                         (others > 0 ? $" ({others} other control plane(s) use it too)" : string.Empty);
        }
    }

    private static IEnumerable<string> ValidateCluster(ResolvedCluster cluster, string where, List<(string Where, string Key, string File)> missingFiles)
    {
        if (TimeZoneInfo.TryFindSystemTimeZoneById(cluster.Options.TimeZone, out var zone) is false)
        {
            yield return $"{where}:TimeZone: {Redaction.Quote(cluster.Options.TimeZone)} is not a known time zone (use an IANA name such as Europe/Rome)";
        }
        else
        {
            foreach (var (key, text) in new[] { ("Schedule", cluster.Options.Schedule), ("VerifySchedule", cluster.Options.VerifySchedule) })
            {
                if (!string.IsNullOrWhiteSpace(text) && !CronSchedule.TryParse(text, zone, out _, out var cronError))
                {
                    yield return $"{where}:{key}: {cronError}";
                }
            }
        }

        foreach (var problem in ValidateRetention(cluster.Options.Retention, $"{where}:Retention"))
        {
            yield return problem;
        }

        if (cluster.Options.Retry.Attempts is < 0 or > RetryPolicy.MaxAttempts)
        {
            yield return $"{where}:Retry:Attempts: {cluster.Options.Retry.Attempts} is outside 0..{RetryPolicy.MaxAttempts} (0: no retries)";
        }

        if (cluster.Options.Retry.DelaySeconds is < 1 or > RetryPolicy.MaxDelaySeconds)
        {
            yield return $"{where}:Retry:DelaySeconds: {cluster.Options.Retry.DelaySeconds} is outside 1..{RetryPolicy.MaxDelaySeconds}";
        }

        if (cluster.ControlPlanes.Count == 0)
        {
            yield return $"{where}:ControlPlanes: at least one control plane is required";
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, cp) in cluster.ControlPlanes)
        {
            var cpWhere = $"{where}: {path[(path.IndexOf(":ControlPlanes:", StringComparison.Ordinal) + 1)..]}";
            if (string.IsNullOrWhiteSpace(cp.Name))
            {
                yield return $"{cpWhere}:Name: is required";
            }
            else if (!SafeName().IsMatch(cp.Name) || Redaction.LooksSecret(cp.Name))
            {
                yield return $"{cpWhere}:Name: {Redaction.Quote(cp.Name)} may contain only letters, digits, '.', '_' and '-', and must not be a key";
            }
            else if (!seen.Add(cp.Name))
            {
                yield return $"{cpWhere}:Name: {Redaction.Quote(cp.Name)} is used by another control plane of this cluster";
            }

            if (string.IsNullOrWhiteSpace(cp.Address))
            {
                yield return $"{cpWhere}:Address: is required";
            }

            foreach (var problem in ValidateNode(cp, cpWhere, missingFiles))
            {
                yield return problem;
            }
        }
    }

    private static IEnumerable<string> ValidateNode(ControlPlaneOptions cp, string where, List<(string Where, string Key, string File)> missingFiles)
    {
        if (string.IsNullOrWhiteSpace(cp.Ssh.User))
        {
            yield return $"{where}:Ssh:User: is required";
        }

        if (cp.Ssh.Port is < 1 or > 65535)
        {
            yield return $"{where}:Ssh:Port: {cp.Ssh.Port} is not a TCP port";
        }

        if (cp.Ssh.ConnectTimeoutSeconds is < 1 or > 600)
        {
            yield return $"{where}:Ssh:ConnectTimeoutSeconds: {cp.Ssh.ConnectTimeoutSeconds} is outside 1..600";
        }

        foreach (var (key, file) in new[] { ("PrivateKeyFile", cp.Ssh.PrivateKeyFile), ("KnownHostsFile", cp.Ssh.KnownHostsFile) })
        {
            if (file is null)
            {
                yield return $"{where}:Ssh:{key}: is required";
            }
            else if (!File.Exists(file))
            {
                missingFiles.Add((where, key, file));
            }
        }

        if (cp.Etcd.Mode is not (EtcdModes.Tunnel or EtcdModes.Exec))
        {
            yield return $"{where}:Etcd:Mode: {Redaction.Quote(cp.Etcd.Mode)} is not one of {EtcdModes.Tunnel}, {EtcdModes.Exec}";
        }

        if (cp.Etcd.ClientPort is < 1 or > 65535)
        {
            yield return $"{where}:Etcd:ClientPort: {cp.Etcd.ClientPort} is not a TCP port";
        }

        if (string.IsNullOrWhiteSpace(cp.Etcd.Etcdctl))
        {
            yield return $"{where}:Etcd:Etcdctl: may not be empty";
        }

        foreach (var (key, value) in new[]
                 {
                     ("Pki", cp.Paths.Pki), ("Manifests", cp.Paths.Manifests), ("Kubeconfigs", cp.Paths.Kubeconfigs),
                     ("EtcdData", cp.Paths.EtcdData), ("Staging", cp.Paths.Staging),
                 })
        {
            if (string.IsNullOrWhiteSpace(value) || !value.StartsWith('/'))
            {
                yield return $"{where}:Paths:{key}: {Redaction.Quote(value)} is not an absolute path on the node";
            }
        }
    }

    private static IEnumerable<string> ValidateRetention(RetentionOptions options, string where)
    {
        foreach (var (key, value) in RetentionSettings.Counts(options))
        {
            if (value < RetentionPolicy.Unlimited)
            {
                yield return $"{where}:{key}: {value} is not a count (0 or more, or -1 for every period)";
            }
        }

        if (options.KeepWithin is { Length: > 0 } within && !RetentionDuration.TryParse(within, out _))
        {
            yield return $"{where}:KeepWithin: {Redaction.Quote(within)} is not a duration like 2d12h or 1y6m (y, m, d, h)";
        }

        if (options.IncompleteGraceHours < 1)
        {
            yield return $"{where}:IncompleteGraceHours: {options.IncompleteGraceHours} must be at least 1";
        }

        if (RetentionSettings.Counts(options).All(c => c.Value == 0) && string.IsNullOrEmpty(options.KeepWithin))
        {
            yield return $"{where}: the policy keeps nothing: set at least one of KeepLast, KeepHourly, KeepDaily, KeepWeekly, KeepMonthly, KeepYearly, KeepWithin (here or in Defaults)";
        }
    }

    /// <summary>host:port, the host an address or name ("0.0.0.0", "[::]" or "*" for every interface).</summary>
    public static bool TryParseListen(string listen, out string host, out int port)
    {
        host = string.Empty;
        port = 0;
        var colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            return false;
        }

        host = listen[..colon];
        return host.Length > 0;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex SafeName();
}
