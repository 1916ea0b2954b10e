using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace ClusterBackup.Configuration;

/// <summary>
/// Reads the config file and <c>CLUSTERBACKUP__*</c> environment overrides, resolves inheritance
/// and validates the result. Nothing is contacted: a bad config never reaches a node or a bucket.
/// </summary>
internal static class ConfigurationLoader
{
    /// <summary>
    /// Why binding and the key check may reflect over the option types in a trimmed build: they are
    /// this assembly's, and the published binary trims only the framework and libraries that
    /// declare themselves trimmable (TrimMode partial), never this assembly.
    /// </summary>
    internal const string OptionTypesNotTrimmed = "The option types are this assembly's, which the partial trim keeps whole.";

    public const string DefaultPath = "/etc/cluster-backup/appsettings.json";

    public static IConfigurationRoot Read(string path)
    {
        var fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            throw new ConfigurationException(fullPath, ["the file does not exist (pass --config PATH)"]);
        }

        try
        {
            return new ConfigurationBuilder()
                .AddJsonFile(fullPath, optional: false, reloadOnChange: false)
                .AddEnvironmentVariables()
                .Build();
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException)
        {
            var json = FindInner<JsonException>(ex);
            var problem = json is { LineNumber: { } line }
                ? $"not valid JSON (line {line + 1}, byte {json.BytePositionInLine + 1}): {json.Message.Split(" LineNumber:")[0]}"
                : $"not valid JSON: {ex.GetBaseException().Message}";
            throw new ConfigurationException(fullPath, [problem]);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new ConfigurationException(fullPath, [$"cannot be read: {ex.Message}"]);
        }
    }

    private static T? FindInner<T>(Exception? ex)
        where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is T match)
            {
                return match;
            }
        }

        return null;
    }

    public static AgentSettings Load(string path, ConfigurationUse use = ConfigurationUse.Commands) => Resolve(Read(path), Path.GetFullPath(path), use);

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = OptionTypesNotTrimmed)]
    public static AgentSettings Resolve(IConfiguration configuration, string configPath, ConfigurationUse use = ConfigurationUse.Commands)
    {
        var root = configuration.GetSection(ClusterBackupOptions.SectionName);
        if (!root.Exists())
        {
            throw new ConfigurationException(configPath, [$"no '{ClusterBackupOptions.SectionName}' section"]);
        }

        var problems = SettingsValidator.CheckKeys(root).ToList();
        if (problems.Count > 0)
        {
            throw new ConfigurationException(configPath, problems);
        }

        var baseDirectory = Path.GetDirectoryName(configPath) ?? "/";
        var bound = root.Get<ClusterBackupOptions>() ?? new ClusterBackupOptions();
        var clusters = ResolveClusters(root, baseDirectory, problems);
        var options = bound with
        {
            Storage = ResolvePaths(bound.Storage, baseDirectory),
            Encryption = bound.Encryption with
            {
                RecipientsFile = Absolute(bound.Encryption.RecipientsFile, baseDirectory),
                IdentityFile = Absolute(bound.Encryption.IdentityFile, baseDirectory),
            },
            Signing = bound.Signing with
            {
                KeyFile = Absolute(bound.Signing.KeyFile, baseDirectory),
                AllowedSignersFile = Absolute(bound.Signing.AllowedSignersFile, baseDirectory),
            },
        };

        problems.AddRange(SettingsValidator.Validate(options, clusters, use, out var encryption, out var signing));
        var logLevels = LogLevels.Read(configuration, problems);
        if (problems.Count > 0)
        {
            throw new ConfigurationException(configPath, problems);
        }

        return new AgentSettings(
            configPath,
            options.Metrics,
            options.Storage,
            options.Compression,
            encryption,
            signing,
            options.Verify,
            options.Scheduler,
            options.Certificates,
            logLevels,
            clusters.Select(ToSettings).ToList());
    }

    private static List<ResolvedCluster> ResolveClusters(IConfigurationSection root, string baseDirectory, List<string> problems)
    {
        var defaults = root.GetSection("Defaults");
        foreach (var perCluster in new[] { "Name", "ControlPlanes" })
        {
            if (defaults.GetSection(perCluster).Exists())
            {
                problems.Add($"{defaults.Path}:{perCluster}: is set per cluster, not in Defaults");
            }
        }

        var result = new List<ResolvedCluster>();
        foreach (var clusterSection in root.GetSection("Clusters").GetChildren())
        {
            var merged = Layer(Flatten(defaults, exclude: ["Name", "ControlPlanes"]), Flatten(clusterSection));
            var cluster = Bind<ClusterOptions>(merged);
            var inherited = merged.Where(kv => IsNodeScoped(kv.Key)).ToDictionary(StringComparer.OrdinalIgnoreCase);

            var controlPlanes = clusterSection.GetSection("ControlPlanes").GetChildren()
                .Select(cpSection =>
                {
                    var cp = Bind<ControlPlaneOptions>(Layer(inherited, Flatten(cpSection)));
                    return (Path: cpSection.Path, Options: cp with { Ssh = ResolvePaths(cp.Ssh, baseDirectory) });
                })
                .ToList();

            result.Add(new ResolvedCluster(clusterSection.Path, cluster, controlPlanes));
        }

        return result;
    }

    private static ClusterSettings ToSettings(ResolvedCluster cluster) => new(
        cluster.Options.Name!,
        Schedule(cluster.Options.Schedule, cluster.Options.TimeZone),
        Schedule(cluster.Options.VerifySchedule, cluster.Options.TimeZone),
        TimeZoneInfo.FindSystemTimeZoneById(cluster.Options.TimeZone),
        cluster.ControlPlanes
            .Select(cp => new ControlPlaneSettings(cp.Options.Name!, cp.Options.Address!, cp.Options.Ssh, cp.Options.Etcd, cp.Options.Paths, cp.Options.Restore))
            .ToList(),
        RetentionSettings.ToPolicy(cluster.Options.Retention),
        TimeSpan.FromHours(cluster.Options.Retention.IncompleteGraceHours),
        new RetryPolicy(cluster.Options.Retry.Attempts, TimeSpan.FromSeconds(cluster.Options.Retry.DelaySeconds)));

    private static CronSchedule? Schedule(string? text, string zone) =>
        !string.IsNullOrWhiteSpace(text) && CronSchedule.TryParse(text, TimeZoneInfo.FindSystemTimeZoneById(zone), out var schedule, out _)
            ? schedule
            : null;

    private static bool IsNodeScoped(string key) =>
        key.StartsWith("Ssh:", StringComparison.OrdinalIgnoreCase)
        || key.StartsWith("Etcd:", StringComparison.OrdinalIgnoreCase)
        || key.StartsWith("Paths:", StringComparison.OrdinalIgnoreCase)
        || key.StartsWith("Restore:", StringComparison.OrdinalIgnoreCase);

    private static Dictionary<string, string?> Flatten(IConfigurationSection section, params string[] exclude) =>
        section.AsEnumerable(makePathsRelative: true)
            .Where(kv => kv.Value is not null)
            .Where(kv => !exclude.Any(e => kv.Key.Equals(e, StringComparison.OrdinalIgnoreCase)
                                           || kv.Key.StartsWith(e + ":", StringComparison.OrdinalIgnoreCase)))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.OrdinalIgnoreCase);

    private static Dictionary<string, string?> Layer(IReadOnlyDictionary<string, string?> lower, IReadOnlyDictionary<string, string?> upper)
    {
        var merged = new Dictionary<string, string?>(lower, StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in upper)
        {
            if (!string.IsNullOrEmpty(value))
            {
                merged[key] = value;
            }
        }

        return merged;
    }

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = OptionTypesNotTrimmed)]
    private static T Bind<T>(IReadOnlyDictionary<string, string?> values)
        where T : new()
    {
        var options = new T();
        new ConfigurationBuilder().AddInMemoryCollection(values).Build().Bind(options);
        return options;
    }

    private static SshOptions ResolvePaths(SshOptions ssh, string baseDirectory) => ssh with
    {
        PrivateKeyFile = Absolute(ssh.PrivateKeyFile, baseDirectory),
        KnownHostsFile = Absolute(ssh.KnownHostsFile, baseDirectory),
    };

    private static StorageOptions ResolvePaths(StorageOptions storage, string baseDirectory) => storage with
    {
        Path = Absolute(storage.Path, baseDirectory),
        CaFile = Absolute(storage.CaFile, baseDirectory),
    };

    private static string? Absolute(string? path, string baseDirectory) =>
        string.IsNullOrWhiteSpace(path) ? null : Path.GetFullPath(path, baseDirectory);
}

/// <summary>A cluster after inheritance, before validation turns it into <see cref="ClusterSettings"/>.</summary>
internal sealed record ResolvedCluster(
    string Path,
    ClusterOptions Options,
    IReadOnlyList<(string Path, ControlPlaneOptions Options)> ControlPlanes);
