using System.CommandLine;
using ClusterBackup.Backup;
using ClusterBackup.Catalog;
using ClusterBackup.Restore;
using ClusterBackup.Scheduling;
using ClusterBackup.Configuration;
using ClusterBackup.Pipeline;
using ClusterBackup.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Events;

namespace ClusterBackup.Cli;

/// <summary>
/// What every command shares: the global options, loading the configuration (exit 78 on any
/// problem, before anything is contacted), the services, and turning failures into one line and
/// an exit code. A stack trace only with --verbose.
/// </summary>
internal sealed class CliHost(TextWriter stdout, TextWriter stderr)
{
    public TextWriter Out { get; } = stdout;

    public TextWriter Error { get; } = stderr;

    /// <summary>Progress only on a terminal: never into a file, a pipe or the journal.</summary>
    private bool ShowsProgress => ReferenceEquals(Error, Console.Error) && !Console.IsErrorRedirected;

    public Option<string> ConfigOption { get; } = new("--config")
    {
        Description = "The configuration file",
        HelpName = "PATH",
        DefaultValueFactory = _ => ConfigurationLoader.DefaultPath,
        Recursive = true,
    };

    public Option<bool> VerboseOption { get; } = new("--verbose")
    {
        Description = "Debug logging, and stack traces with errors",
        Recursive = true,
    };

    public AgentSettings LoadSettings(ParseResult parse, ConfigurationUse use = ConfigurationUse.Commands) =>
        ConfigurationLoader.Load(parse.GetValue(ConfigOption)!, use);

    public async Task<int> RunAsync(
        ParseResult parse, Func<IServiceProvider, CancellationToken, Task<int>> body, CancellationToken cancellationToken, ConfigurationUse use = ConfigurationUse.Commands)
    {
        var verbose = parse.GetValue(VerboseOption);
        try
        {
            var settings = LoadSettings(parse, use);
            await using var logger = new LoggerConfiguration()
                .MinimumLevel.Is(verbose ? LogEventLevel.Debug : LogEventLevel.Information)
                .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
                .MinimumLevel.Override("System", LogEventLevel.Warning)
                .WriteTo.Sink(new TextWriterSink(Error))
                .CreateLogger();
            await using var services = new ServiceCollection()
                .AddLogging(builder => builder.ClearProviders().AddSerilog(logger))
                .AddAgent(settings)
                .AddSingleton<ITransferProgress>(sp => ShowsProgress
                    ? new TerminalTransferProgress(Error, sp.GetRequiredService<TimeProvider>())
                    : NoTransferProgress.Instance)
                .BuildServiceProvider();
            return await body(services, cancellationToken);
        }
        catch (Exception ex)
        {
            return Fail(ex, verbose, cancellationToken);
        }
    }

    public int Fail(Exception ex, bool verbose, CancellationToken cancellationToken)
    {
        var code = ExitCodes.Failed;
        switch (ex)
        {
            case ConfigurationException config:
                Error.WriteLine($"configuration error in {config.ConfigSource}:");
                foreach (var problem in config.Problems)
                {
                    Error.WriteLine($"  {problem}");
                }

                return ExitCodes.Config;
            case UsageException usage:
                Error.WriteLine($"error: {usage.Message}");
                return ExitCodes.Usage;
            case OperationCanceledException when cancellationToken.IsCancellationRequested:
                Error.WriteLine("cancelled: nothing was committed by the interrupted work");
                break;
            case StorageException or BackupFailedException or SetNotFoundException or SetRefusedException or DownloadFailedException or RestoreRefusedException or DaemonFailedException:
                Error.WriteLine($"error: {ex.Message}");
                break;
            case RestoreStepFailedException step:
                Error.WriteLine($"error: node {step.Node}: {step.Step.Describe()}: {step.Message}");
                break;
            case RestoreInterruptedException interrupted:
                Error.WriteLine($"error: {interrupted.Message}");
                break;
            default:
                Error.WriteLine($"error: unexpected {ex.GetType().Name}: {ex.Message}{(verbose ? string.Empty : " (run with --verbose for details)")}");
                break;
        }

        if (verbose)
        {
            Error.WriteLine(ex.ToString());
        }

        return code;
    }

    /// <summary>The clusters named with --cluster, or all; an unknown name is a usage error.</summary>
    public static IReadOnlyList<ClusterSettings> SelectClusters(AgentSettings settings, IReadOnlyCollection<string>? names)
    {
        if (names is null || names.Count == 0)
        {
            return settings.Clusters;
        }

        return names.Distinct(StringComparer.Ordinal).Select(name => settings.FindCluster(name)
            ?? throw new UsageException($"no cluster named '{name}' in {settings.ConfigPath} (configured: {string.Join(", ", settings.Clusters.Select(c => c.Name))})"))
            .ToList();
    }
}
