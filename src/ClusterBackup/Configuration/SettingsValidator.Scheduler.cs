using Npgsql;

namespace ClusterBackup.Configuration;

internal static partial class SettingsValidator
{
    public const int MaxConcurrentRunsLimit = 64;

    /// <summary>The Scheduler section: contacts nothing, and never prints the connection string.</summary>
    private static IEnumerable<string> ValidateScheduler(SchedulerOptions scheduler, string where)
    {
        if (scheduler.MaxConcurrentRuns is < 1 or > MaxConcurrentRunsLimit)
        {
            yield return $"{where}:MaxConcurrentRuns: {scheduler.MaxConcurrentRuns} is outside 1..{MaxConcurrentRunsLimit}";
        }

        if (!string.IsNullOrEmpty(scheduler.InstanceName) && (!SafeName().IsMatch(scheduler.InstanceName) || scheduler.InstanceName.Length > 80))
        {
            yield return $"{where}:InstanceName: {Redaction.Quote(scheduler.InstanceName)} may contain only letters, digits, '.', '_' and '-' (at most 80)";
        }

        switch (scheduler.Store)
        {
            case SchedulerStores.Memory:
                break;
            case SchedulerStores.Postgres:
                if (string.IsNullOrWhiteSpace(scheduler.ConnectionString))
                {
                    yield return $"{where}:ConnectionString: is required for Store \"postgres\" (e.g. \"Host=db.example;Port=5432;Database=cluster_backup;Username=cluster_backup\")";
                    break;
                }

                if (ConnectionStringProblem(scheduler.ConnectionString) is { } problem)
                {
                    yield return $"{where}:ConnectionString: {problem}";
                }

                break;
            default:
                yield return $"{where}:Store: {Redaction.Quote(scheduler.Store)} is not \"memory\" or \"postgres\"";
                break;
        }
    }

    private static string? ConnectionStringProblem(string connectionString)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            // Npgsql names the offending keyword, never a value.
            return $"is not a valid Npgsql connection string ({ex.Message.Split('\n')[0].TrimEnd('.')})";
        }

        if (!string.IsNullOrEmpty(builder.Password))
        {
            return "holds a password; never put one in this file: use a passfile (Passfile=PATH, or PGPASSFILE) or the environment (PGPASSWORD)";
        }

        if (string.IsNullOrWhiteSpace(builder.Host) && Environment.GetEnvironmentVariable("PGHOST") is null)
        {
            return "names no Host (nor is PGHOST set)";
        }

        return null;
    }
}
