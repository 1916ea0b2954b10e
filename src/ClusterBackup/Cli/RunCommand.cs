using System.CommandLine;
using ClusterBackup.Configuration;
using ClusterBackup.Scheduling;

namespace ClusterBackup.Cli;

/// <summary><c>cluster-backup run</c>: the daemon (systemd's ExecStart).</summary>
internal static class RunCommand
{
    public const string Name = "run";

    public static Command Create(CliHost host)
    {
        var command = new Command(Name, """
            Run as a daemon: back up each cluster on its Schedule (in its TimeZone), apply retention
            after each backup, serve Prometheus metrics and /healthz on Metrics:Listen. At start-up,
            metrics are seeded from storage and a cluster that missed a scheduled backup is backed up
            at once. A failed run is tried again after Retry:DelaySeconds (300), doubled each time,
            Retry:Attempts (3) times, unless the next scheduled firing comes first. Never two runs
            of one cluster at once: a trigger that finds its cluster busy is
            skipped. Up to Scheduler:MaxConcurrentRuns clusters run at once. With Scheduler:Store
            "postgres", several agents share one schedule: each firing runs on one agent, and another
            agent takes over the runs of one that stops checking in (README: "Running several agents").
            SIGTERM stops taking work, cancels runs in flight (their uploads are aborted,
            nothing is committed) and exits 0. Logs: text on a terminal, compact JSON otherwise.
            Exit status: 0 after a clean stop; 1 when a fault stops it (Metrics:Listen's port in use,
            a PostgreSQL store in which it may not create its tables), so systemd restarts it; 78 on
            a configuration error (systemd does not restart).

            Example: cluster-backup run --config /etc/cluster-backup/appsettings.json
            """);
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var settings = host.LoadSettings(parse, ConfigurationUse.Daemon);
                await Daemon.RunAsync(settings, cancellationToken);
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return host.Fail(ex, parse.GetValue(host.VerboseOption), cancellationToken);
            }
        });
        return command;
    }
}
