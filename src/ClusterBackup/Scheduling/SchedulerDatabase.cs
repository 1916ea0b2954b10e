using ClusterBackup.Configuration;
using Npgsql;

namespace ClusterBackup.Scheduling;

/// <summary>
/// The PostgreSQL database agents share (<c>Scheduler:Store</c> "postgres"): Quartz's tables and the
/// clusters' run locks. Connections name the agent (application_name), so a busy lock says who holds it.
/// </summary>
internal sealed class SchedulerDatabase : IAsyncDisposable
{
    private readonly NpgsqlDataSource _source;
    private readonly string _where;

    public SchedulerDatabase(SchedulerOptions options)
    {
        var builder = Builder(options);
        _where = $"{builder.Host ?? Environment.GetEnvironmentVariable("PGHOST") ?? "localhost"}:{builder.Port}/{builder.Database ?? builder.Username ?? "?"}";
        _source = NpgsqlDataSource.Create(builder);
    }

    /// <summary>The configured connection string with the agent's application name: Quartz's connections use it too.</summary>
    public static string ConnectionStringFor(SchedulerOptions options) => Builder(options).ConnectionString;

    private static NpgsqlConnectionStringBuilder Builder(SchedulerOptions options)
    {
        var builder = new NpgsqlConnectionStringBuilder(options.ConnectionString)
        {
            ApplicationName = $"cluster-backup {options.Instance}",
        };
        if (builder.KeepAlive == 0)
        {
            // A session whose agent vanished without closing it (power loss) keeps its locks until
            // the server notices; keepalives bound that.
            builder.KeepAlive = 15;
        }

        return builder;
    }

    /// <summary>host:port/database, for messages: never the connection string itself.</summary>
    public string Describe() => _where;

    public async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken) => await _source.OpenConnectionAsync(cancellationToken);

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
