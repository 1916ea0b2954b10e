using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Scheduling;

/// <summary>A private PostgreSQL for the tests of agents sharing a schedule; each test takes a database of its own.</summary>
public sealed class SharedSchedulerFixture : IAsyncLifetime
{
    private int _databases;

    public PostgresServer Postgres { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Postgres = await PostgresServer.StartAsync(Directory.CreateTempSubdirectory("cluster-backup-pg-").FullName);

    /// <summary>
    /// A fresh, empty database owned by the agents' role (or by <paramref name="owner"/>: then the
    /// agents may connect but not create tables), and its connection string (no password: a passfile).
    /// </summary>
    public async Task<(string Name, string ConnectionString)> NewDatabaseAsync(string owner = PostgresServer.Role)
    {
        var name = $"agents_{Interlocked.Increment(ref _databases)}";
        await Postgres.SqlAsync($"CREATE DATABASE {name} OWNER {owner}");
        return (name, Postgres.ConnectionString.Replace($"Database={PostgresServer.Database}", $"Database={name}", StringComparison.Ordinal));
    }

    public async Task DisposeAsync() => await Postgres.DisposeAsync();
}
