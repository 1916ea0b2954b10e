using System.CommandLine;

namespace ClusterBackup.Cli;

/// <summary>The command line: one verb per file, each calling the same services as the daemon.</summary>
internal static class CliApp
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        var host = new CliHost(stdout, stderr);
        var root = new RootCommand("""
            cluster-backup: scheduled etcd snapshot and PKI backups of kubeadm-style clusters over SSH,
            to S3-compatible storage or a directory.

            Exit status: 0 ok, 1 the operation failed, 2 usage error, 78 configuration error.
            """)
        {
            host.ConfigOption,
            host.VerboseOption,
            RunCommand.Create(host),
            BackupCommand.Create(host),
            ListCommand.Create(host),
            CertsCommand.Create(host),
            VerifyCommand.Create(host),
            DownloadCommand.Create(host),
            RestoreCommand.Create(host),
            PruneCommand.Create(host),
            ConfigCommand.Create(host),
        };

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await stderr.WriteLineAsync($"error: {error.Message}");
            }

            await stderr.WriteLineAsync("Run 'cluster-backup --help' for usage.");
            return ExitCodes.Usage;
        }

        // The daemon's host handles SIGTERM itself (graceful stop within its shutdown timeout). An
        // interrupted restore finishes the step in progress on each member and undoes what it did.
        var terminationTimeout = parse.CommandResult.Command.Name switch
        {
            RunCommand.Name => (TimeSpan?)null,
            RestoreCommand.Name => RestoreCommand.InterruptionTimeout,
            _ => TimeSpan.FromSeconds(30),
        };
        return await parse.InvokeAsync(
            new InvocationConfiguration { Output = stdout, Error = stderr, ProcessTerminationTimeout = terminationTimeout },
            cancellationToken);
    }
}
