using System.Text.Json.Nodes;
using ClusterBackup.Configuration;
using ClusterBackup.Tests.Support;
using Serilog.Events;

namespace ClusterBackup.Tests.Configuration;

public sealed class ConfigurationLoaderTests : IDisposable
{
    private static readonly string Recipient = ClusterBackup.Encryption.AgeIdentity.Generate().Recipient.ToString();

    private readonly string _directory = Directory.CreateTempSubdirectory("cluster-backup-config-").FullName;

    public ConfigurationLoaderTests()
    {
        File.WriteAllText(Path.Combine(_directory, "id_ed25519"), "key");
        File.WriteAllText(Path.Combine(_directory, "known_hosts"), string.Empty);
    }

    private JsonObject Valid() => JsonNode.Parse($$"""
        {
          "ClusterBackup": {
            "Storage": { "Type": "s3", "Bucket": "backups", "ServiceUrl": "http://127.0.0.1:9000", "ForcePathStyle": true },
            "Encryption": { "Recipients": [ "{{Recipient}}" ] },
            "Defaults": {
              "Ssh": { "User": "backup", "PrivateKeyFile": "id_ed25519", "KnownHostsFile": "known_hosts", "Sudo": true },
              "Etcd": { "ClientPort": 2379 },
              "Paths": { "Pki": "/etc/kubernetes/pki" },
              "Retention": { "KeepLast": 3, "KeepDaily": 7 }
            },
            "Clusters": [
              {
                "Name": "prod",
                "TimeZone": "Europe/Rome",
                "Etcd": { "Mode": "exec" },
                "ControlPlanes": [
                  { "Name": "cp1", "Address": "10.0.0.1" },
                  { "Name": "cp2", "Address": "10.0.0.2", "Ssh": { "Port": 2222 }, "Etcd": { "ClientPort": 12379 }, "Paths": { "Pki": "/srv/pki" } }
                ]
              },
              { "Name": "lab", "ControlPlanes": [ { "Name": "cp1", "Address": "10.1.0.1" } ] }
            ]
          }
        }
        """)!.AsObject();

    private AgentSettings Load(JsonObject config)
    {
        var path = Path.Combine(_directory, "appsettings.json");
        File.WriteAllText(path, config.ToJsonString());
        return ConfigurationLoader.Load(path);
    }

    private IReadOnlyList<string> Problems(JsonObject config) =>
        Assert.Throws<ConfigurationException>(() => Load(config)).Problems;

    [Fact]
    public void Log_levels_are_one_level_or_a_default_with_overrides_and_an_unknown_one_is_a_problem_naming_its_key()
    {
        var config = Valid();
        Assert.Equal(LogEventLevel.Information, Load(config).LogLevels.Default);
        Assert.Equal(LogEventLevel.Warning, Load(config).LogLevels.Overrides["Quartz"]);

        config["Serilog"] = new JsonObject { ["MinimumLevel"] = "debug" };
        Assert.Equal(LogEventLevel.Debug, Load(config).LogLevels.Default);

        config["Serilog"] = JsonNode.Parse("""{ "MinimumLevel": { "Default": "Error", "Override": { "Quartz": "Information", "ClusterBackup.Scheduling": "Verbose" } } }""");
        var levels = Load(config).LogLevels;
        Assert.Equal(LogEventLevel.Error, levels.Default);
        Assert.Equal(LogEventLevel.Information, levels.Overrides["Quartz"]);
        Assert.Equal(LogEventLevel.Verbose, levels.Overrides["ClusterBackup.Scheduling"]);
        Assert.Equal(LogEventLevel.Warning, levels.Overrides["Microsoft"]);

        config["Serilog"] = JsonNode.Parse("""{ "MinimumLevel": { "Default": "3", "Override": { "Quartz": "Loud" } } }""");
        Assert.Equal(
            ["Serilog:MinimumLevel:Override:Quartz: 'Loud' is not a level (Verbose, Debug, Information, Warning, Error, Fatal)",
             "Serilog:MinimumLevel:Default: '3' is not a level (Verbose, Debug, Information, Warning, Error, Fatal)"],
            Problems(config));
    }

    [Fact]
    public void One_validator_reports_every_problem_at_once_retention_encryption_and_what_run_needs_included()
    {
        var config = Valid();
        var root = config["ClusterBackup"]!;
        root["Encryption"]!["Recipients"] = new JsonArray("age1notakey");
        root["Defaults"]!["Retention"] = new JsonObject { ["KeepLast"] = -2 };
        root["Compression"] = new JsonObject { ["Level"] = 30 };
        var path = Path.Combine(_directory, "appsettings.json");
        File.WriteAllText(path, config.ToJsonString());

        var commands = Assert.Throws<ConfigurationException>(() => ConfigurationLoader.Load(path)).Problems;
        var daemon = Assert.Throws<ConfigurationException>(() => ConfigurationLoader.Load(path, ConfigurationUse.Daemon)).Problems;

        Assert.Contains(commands, p => p.StartsWith("ClusterBackup:Encryption:Recipients:0: 'age1notakey' is not an age X25519 recipient", StringComparison.Ordinal));
        Assert.Contains(commands, p => p.StartsWith("ClusterBackup:Clusters:0 (cluster 'prod'):Retention:KeepLast: -2 is not a count", StringComparison.Ordinal));
        Assert.Contains(commands, p => p.StartsWith("ClusterBackup:Compression:Level: 30 is outside 1..19", StringComparison.Ordinal));
        Assert.DoesNotContain(commands, p => p.Contains("required by 'run'", StringComparison.Ordinal));
        Assert.Equal(commands.Count + 3, daemon.Count);
        Assert.Contains(daemon, p => p.StartsWith("ClusterBackup:Signing:KeyFile: no signing key is configured", StringComparison.Ordinal));
        Assert.Contains("ClusterBackup:Clusters:1 (cluster 'lab'):Schedule: is required by 'run' (e.g. \"0 */6 * * *\")", daemon);
    }

    [Fact]
    public void Loaded_settings_are_not_changed_by_loading_again_and_paths_resolve_against_the_config_file()
    {
        var first = Load(Valid());
        var second = Load(Valid());

        Assert.Equal(Path.Combine(_directory, "id_ed25519"), first.Clusters[0].ControlPlanes[0].Ssh.PrivateKeyFile);
        Assert.Equal(first.Clusters[0].ControlPlanes[0].Ssh, second.Clusters[0].ControlPlanes[0].Ssh);
    }

    [Fact]
    public void Settings_inherit_from_Defaults_then_cluster_then_control_plane()
    {
        var settings = Load(Valid());

        var prod = settings.FindCluster("prod")!;
        var (cp1, cp2) = (prod.ControlPlanes[0], prod.ControlPlanes[1]);
        Assert.Equal("backup", cp1.Ssh.User);
        Assert.True(cp1.Ssh.Sudo);
        Assert.Equal(22, cp1.Ssh.Port);
        Assert.Equal(2222, cp2.Ssh.Port);
        Assert.Equal("backup", cp2.Ssh.User);
        Assert.Equal(EtcdModes.Exec, cp1.Etcd.Mode);
        Assert.Equal(EtcdModes.Exec, cp2.Etcd.Mode);
        Assert.Equal(2379, cp1.Etcd.ClientPort);
        Assert.Equal(12379, cp2.Etcd.ClientPort);
        Assert.Equal("/etc/kubernetes/pki", cp1.Paths.Pki);
        Assert.Equal("/srv/pki", cp2.Paths.Pki);
        Assert.Equal("/etc/kubernetes/manifests", cp2.Paths.Manifests);
        Assert.Equal("Europe/Rome", prod.TimeZone.Id);

        var lab = settings.FindCluster("lab")!;
        Assert.Equal(EtcdModes.Tunnel, lab.ControlPlanes[0].Etcd.Mode);
        Assert.Equal(TimeZoneInfo.Utc.Id, lab.TimeZone.Id);
    }

    [Fact]
    public void Relative_key_paths_are_resolved_against_the_config_file()
    {
        var settings = Load(Valid());

        Assert.Equal(Path.Combine(_directory, "id_ed25519"), settings.Clusters[0].ControlPlanes[0].Ssh.PrivateKeyFile);
    }

    [Fact]
    public void Every_problem_is_reported_at_once_each_naming_its_key()
    {
        var config = Valid();
        var cluster = config["ClusterBackup"]!["Clusters"]![0]!;
        cluster["ControlPlanes"]![1]!["Ssh"]!["Port"] = 70000;
        cluster["Etcd"]!["Mode"] = "ssh";
        cluster["TimeZone"] = "Mars/Olympus";
        config["ClusterBackup"]!["Clusters"]![1]!["Name"] = "prod";
        config["ClusterBackup"]!["Storage"]!["Bucket"] = null;

        var problems = Problems(config);

        Assert.Contains("ClusterBackup:Storage:Bucket: is required for Type 's3'", problems);
        Assert.Contains(problems, p => p.StartsWith("ClusterBackup:Clusters:0 (cluster 'prod'): ControlPlanes:1:Ssh:Port: 70000 is not a TCP port", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("ControlPlanes:0:Etcd:Mode: 'ssh' is not one of tunnel, exec", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("TimeZone: 'Mars/Olympus' is not a known time zone", StringComparison.Ordinal));
        Assert.Contains("ClusterBackup:Clusters:1 (cluster 'prod'):Name: 'prod' is used by another cluster", problems);
    }

    [Fact]
    public void A_misspelt_key_is_reported_instead_of_ignored()
    {
        var config = Valid();
        config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]![0]!["Ssh"] = new JsonObject { ["Prot"] = 2222 };

        var problem = Assert.Single(Problems(config));

        Assert.StartsWith("ClusterBackup:Clusters:0:ControlPlanes:0:Ssh:Prot: unknown key 'Prot' (known: User, Port,", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_value_of_the_wrong_type_is_reported_by_key()
    {
        var config = Valid();
        config["ClusterBackup"]!["Defaults"]!["Ssh"]!["Port"] = "twenty-two";
        config["ClusterBackup"]!["Defaults"]!["Ssh"]!["Sudo"] = "yes";

        var problems = Problems(config);

        Assert.Contains("ClusterBackup:Defaults:Ssh:Port: 'twenty-two' is not a whole number", problems);
        Assert.Contains("ClusterBackup:Defaults:Ssh:Sudo: 'yes' is not true or false", problems);
    }

    [Fact]
    public void Missing_key_files_and_control_planes_are_reported()
    {
        var config = Valid();
        config["ClusterBackup"]!["Defaults"]!["Ssh"]!["PrivateKeyFile"] = "/nonexistent/id";
        config["ClusterBackup"]!["Clusters"]![1]!["ControlPlanes"] = new JsonArray();

        var problems = Problems(config);

        Assert.Contains("ClusterBackup:Clusters:0 (cluster 'prod'): ControlPlanes:0:Ssh:PrivateKeyFile: '/nonexistent/id' does not exist (1 other control plane(s) use it too)", problems);
        Assert.Contains("ClusterBackup:Clusters:1 (cluster 'lab'):ControlPlanes: at least one control plane is required", problems);
    }

    [Fact]
    public void Per_cluster_keys_are_refused_in_Defaults()
    {
        var config = Valid();
        config["ClusterBackup"]!["Defaults"]!["Name"] = "x";

        Assert.Contains("ClusterBackup:Defaults:Name: is set per cluster, not in Defaults", Problems(config));
    }

    [Fact]
    public void Environment_variables_override_the_file()
    {
        Environment.SetEnvironmentVariable("CLUSTERBACKUP__STORAGE__BUCKET", "from-env");
        try
        {
            Assert.Equal("from-env", Load(Valid()).Storage.Bucket);
        }
        finally
        {
            Environment.SetEnvironmentVariable("CLUSTERBACKUP__STORAGE__BUCKET", null);
        }
    }

    [Fact]
    public void Invalid_json_is_reported_with_its_line()
    {
        var path = Path.Combine(_directory, "broken.json");
        File.WriteAllText(path, "{\n  \"ClusterBackup\": {\n    \"Storage\": { \"Type\": \"s3\", }\n    oops\n}");

        var ex = Assert.Throws<ConfigurationException>(() => ConfigurationLoader.Load(path));

        Assert.Equal(path, ex.ConfigSource);
        Assert.StartsWith("not valid JSON (line ", Assert.Single(ex.Problems), StringComparison.Ordinal);
    }

    private const string AgeSecret = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    private const string PrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----";

    public static TheoryData<string, string, string> SecretBearingKeys => new()
    {
        { "Encryption:Recipients:0", AgeSecret, AgeSecret },
        { "Encryption:RecipientsFile", AgeSecret, AgeSecret },
        { "Encryption:IdentityFile", AgeSecret, AgeSecret },
        { "Defaults:Ssh:PrivateKeyFile", PrivateKey, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" },
        { "Defaults:Ssh:KnownHostsFile", PrivateKey, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" },
        { "Storage:CaFile", PrivateKey, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" },
        { "Storage:ServiceUrl", "ftp://backup:Sup3rS3cret@10.0.0.9:9000", "Sup3rS3cret" },
        { "Clusters:0:Name", AgeSecret, AgeSecret },
        { "Clusters:0:ControlPlanes:0:Name", AgeSecret, AgeSecret },
        { "Defaults:Etcd:Mode", AgeSecret, AgeSecret },
    };

    [Theory]
    [MemberData(nameof(SecretBearingKeys))]
    public async Task A_secret_pasted_into_any_key_is_never_printed(string key, string value, string secretPart)
    {
        var config = Valid();
        JsonNode node = config["ClusterBackup"]!;
        var segments = key.Split(':');
        foreach (var segment in segments[..^1])
        {
            node = int.TryParse(segment, out var index) ? node[index]! : node[segment] ?? (node[segment] = new JsonObject());
        }

        if (int.TryParse(segments[^1], out var last))
        {
            node[last] = value;
        }
        else
        {
            node[segments[^1]] = value;
        }

        var path = Path.Combine(_directory, "appsettings.json");
        await File.WriteAllTextAsync(path, config.ToJsonString());

        // IdentityFile is read only by the commands that decrypt.
        string[][] commands = key.EndsWith("IdentityFile", StringComparison.Ordinal)
            ? [["verify", "--verbose"], ["download", "--cluster", "prod", "--to", Path.Combine(_directory, "out")]]
            : [["config", "check"], ["backup"], ["list", "--verbose"]];
        foreach (var args in commands)
        {
            var result = await CliRunner.RunAsync([.. args, "--config", path]);
            Assert.True(result.ExitCode == 78, result.ToString());
            Assert.DoesNotContain(secretPart, result.Output + result.Error, StringComparison.Ordinal);
            result.AssertError(int.TryParse(segments[^1], out _) ? segments[^2] : segments[^1]);
        }
    }

    [Fact]
    public async Task Config_check_exits_78_on_a_missing_file_and_0_on_a_valid_one()
    {
        var missing = await CliRunner.RunAsync("config", "check", "--config", Path.Combine(_directory, "nope.json"));
        Assert.Equal(78, missing.ExitCode);
        missing.AssertError("nope.json:");
        missing.AssertError("the file does not exist");

        var path = Path.Combine(_directory, "appsettings.json");
        await File.WriteAllTextAsync(path, Valid().ToJsonString());
        var valid = await CliRunner.RunAsync("config", "check", "--config", path);
        Assert.Equal(0, valid.ExitCode);
        valid.AssertOutput("cluster prod: cp1 (backup@10.0.0.1:22, etcd exec), cp2 (backup@10.0.0.2:2222, etcd exec)");
    }

    [Fact]
    public async Task An_unknown_cluster_name_is_a_usage_error()
    {
        var path = Path.Combine(_directory, "appsettings.json");
        var config = Valid();
        config["ClusterBackup"]!["Signing"] = new JsonObject { ["Disabled"] = true };
        await File.WriteAllTextAsync(path, config.ToJsonString());

        var result = await CliRunner.RunAsync("backup", "--cluster", "staging", "--config", path);

        Assert.Equal(2, result.ExitCode);
        result.AssertError("no cluster named 'staging'");
        result.AssertError("(configured: prod, lab)");
    }

    [Fact]
    public async Task A_bad_flag_is_a_usage_error()
    {
        var result = await CliRunner.RunAsync("backup", "--clusterr", "x");

        Assert.Equal(2, result.ExitCode);
    }

    [Fact]
    public void Without_recipients_encryption_must_be_disabled_explicitly()
    {
        var config = Valid();
        config["ClusterBackup"]!["Encryption"] = new JsonObject();

        var problem = Assert.Single(Problems(config));

        Assert.StartsWith("ClusterBackup:Encryption:Recipients: no age recipient is configured.", problem, StringComparison.Ordinal);

        config["ClusterBackup"]!["Encryption"] = new JsonObject { ["Disabled"] = true };
        Assert.True(Load(config).Encryption.Disabled);
    }

    [Fact]
    public void Bad_recipients_and_contradictions_are_reported()
    {
        var config = Valid();
        config["ClusterBackup"]!["Encryption"] = new JsonObject
        {
            ["Recipients"] = new JsonArray(Recipient, "age1notakey", "ssh-ed25519 AAAA"),
            ["Disabled"] = true,
        };

        var problems = Problems(config);

        Assert.Contains(problems, p => p.StartsWith("ClusterBackup:Encryption:Recipients:1: 'age1notakey' is not an age X25519 recipient", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("ClusterBackup:Encryption:Recipients:2: ", StringComparison.Ordinal));
        Assert.Contains("ClusterBackup:Encryption:Disabled: is true while recipients are configured; remove one or the other", problems);
    }

    [Fact]
    public void A_recipients_file_adds_its_keys()
    {
        var other = ClusterBackup.Encryption.AgeIdentity.Generate().Recipient.ToString();
        File.WriteAllText(Path.Combine(_directory, "recipients.txt"), $"# offline key\n{other}\n\n");
        var config = Valid();
        config["ClusterBackup"]!["Encryption"]!["RecipientsFile"] = "recipients.txt";

        var recipients = Load(config).Encryption.Recipients.Select(r => r.ToString());

        Assert.Equal([Recipient, other], recipients);
    }

    [Fact]
    public void S3_protection_settings_are_validated()
    {
        var config = Valid();
        var storage = config["ClusterBackup"]!["Storage"]!;
        storage["ServerSideEncryption"] = "aes256";
        storage["KmsKeyId"] = "key-1";
        storage["ObjectLock"] = new JsonObject { ["Mode"] = "COMPLIANCE" };

        var problems = Problems(config);

        Assert.Contains("ClusterBackup:Storage:ServerSideEncryption: 'aes256' is not one of AES256, aws:kms", problems);
        Assert.Contains("ClusterBackup:Storage:KmsKeyId: is set but ServerSideEncryption is not 'aws:kms'", problems);
        Assert.Contains("ClusterBackup:Storage:ObjectLock:Days: 0 is outside 1..36500 (required with a Mode)", problems);
    }

    [Fact]
    public void Retention_inherits_and_an_empty_or_malformed_policy_is_refused()
    {
        var config = Valid();
        config["ClusterBackup"]!["Clusters"]![0]!["Retention"] = new JsonObject { ["KeepWithin"] = "2d12h", ["KeepDaily"] = 0 };
        var prod = Load(config).FindCluster("prod")!;
        Assert.Equal("last 3, within 2d12h", prod.Retention.ToString());
        Assert.Equal(TimeSpan.FromHours(24), prod.IncompleteGrace);

        config["ClusterBackup"]!["Defaults"]!["Retention"] = new JsonObject { ["KeepMonthly"] = -2 };
        config["ClusterBackup"]!["Clusters"]![0]!["Retention"] = new JsonObject { ["KeepWithin"] = "2 days" };
        var problems = Problems(config);

        Assert.Contains("ClusterBackup:Clusters:0 (cluster 'prod'):Retention:KeepMonthly: -2 is not a count (0 or more, or -1 for every period)", problems);
        Assert.Contains("ClusterBackup:Clusters:0 (cluster 'prod'):Retention:KeepWithin: '2 days' is not a duration like 2d12h or 1y6m (y, m, d, h)", problems);
        Assert.Contains("ClusterBackup:Clusters:1 (cluster 'lab'):Retention:KeepMonthly: -2 is not a count (0 or more, or -1 for every period)", problems);

        config["ClusterBackup"]!["Defaults"]!["Retention"] = new JsonObject();
        Assert.Contains(Problems(config), p => p.StartsWith("ClusterBackup:Clusters:1 (cluster 'lab'):Retention: the policy keeps nothing", StringComparison.Ordinal));
    }

    [Fact]
    public void Retries_default_to_three_after_five_minutes_inherit_from_Defaults_and_are_bounded()
    {
        var config = Valid();
        var lab = Load(config).FindCluster("lab")!;
        Assert.Equal(new RetryPolicy(3, TimeSpan.FromMinutes(5)), lab.Retry);

        config["ClusterBackup"]!["Defaults"]!["Retry"] = new JsonObject { ["DelaySeconds"] = 60 };
        config["ClusterBackup"]!["Clusters"]![0]!["Retry"] = new JsonObject { ["Attempts"] = 0 };
        var settings = Load(config);
        Assert.Equal(new RetryPolicy(0, TimeSpan.FromMinutes(1)), settings.FindCluster("prod")!.Retry);
        Assert.Equal(new RetryPolicy(3, TimeSpan.FromMinutes(1)), settings.FindCluster("lab")!.Retry);

        config["ClusterBackup"]!["Defaults"]!["Retry"] = new JsonObject { ["DelaySeconds"] = 0 };
        config["ClusterBackup"]!["Clusters"]![0]!["Retry"] = new JsonObject { ["Attempts"] = 11 };
        var problems = Problems(config);

        Assert.Contains("ClusterBackup:Clusters:0 (cluster 'prod'):Retry:Attempts: 11 is outside 0..10 (0: no retries)", problems);
        Assert.Contains("ClusterBackup:Clusters:0 (cluster 'prod'):Retry:DelaySeconds: 0 is outside 1..86400", problems);
        Assert.Contains("ClusterBackup:Clusters:1 (cluster 'lab'):Retry:DelaySeconds: 0 is outside 1..86400", problems);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
