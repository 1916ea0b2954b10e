using System.CommandLine;
using ClusterBackup.Configuration;

namespace ClusterBackup.Cli;

/// <summary><c>cluster-backup config check</c>: validate the configuration without contacting anything.</summary>
internal static class ConfigCommand
{
    public static Command Create(CliHost host)
    {
        var check = new Command("check", """
            Validate the configuration file and CLUSTERBACKUP__* environment overrides: every problem
            is listed with its key. Nothing is contacted. Exit status 0 when valid, 78 otherwise.

            Example: cluster-backup config check --config /etc/cluster-backup/appsettings.json
            """);
        check.SetAction(parse =>
        {
            try
            {
                var settings = host.LoadSettings(parse);
                var storage = settings.Storage.Type == "filesystem"
                    ? settings.Storage.Path
                    : $"s3://{settings.Storage.Bucket}/{settings.Storage.Prefix}" + (settings.Storage.ServiceUrl is { } url ? $" at {url}" : string.Empty);
                host.Out.WriteLine($"configuration OK: {settings.ConfigPath}");
                host.Out.WriteLine($"  storage: {storage}");
                foreach (var cluster in settings.Clusters)
                {
                    var nodes = string.Join(", ", cluster.ControlPlanes.Select(cp => $"{cp.Name} ({cp.Ssh.User}@{cp.Address}:{cp.Ssh.Port}, etcd {cp.Etcd.Mode})"));
                    host.Out.WriteLine($"  cluster {cluster.Name}: {nodes}");
                }

                return ExitCodes.Ok;
            }
            catch (ConfigurationException ex)
            {
                return host.Fail(ex, verbose: false, CancellationToken.None);
            }
        });
        return new Command("config", "Work with the configuration file") { check };
    }
}
