using System.Globalization;

namespace ClusterBackup.Rig;

/// <summary>
/// A private PostgreSQL (Debian's postgresql) on a free loopback port: initdb and pg_ctl as the
/// unprivileged postgres user, a data directory of its own, password (scram) authentication over
/// TCP for the role the agents use, whose password is only in a passfile.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string Role = "cluster_backup";
    public const string Database = "cluster_backup";
    private const string OsUser = "postgres";

    private PostgresServer(string directory, string bin, int port)
    {
        Directory_ = directory;
        Bin = bin;
        Port = port;
    }

    public int Port { get; }

    /// <summary>A pgpass file (mode 0600) with the role's password: the agents' connection strings name it.</summary>
    public string Passfile => Path.Combine(Directory_, "pgpass");

    /// <summary>The connection string the agents are configured with: no password in it.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Database={Database};Username={Role};Passfile={Passfile};Timeout=5";

    private string Directory_ { get; }

    private string Bin { get; }

    private string Data => Path.Combine(Directory_, "data");

    private string LogFile => Path.Combine(Directory_, "postgres.log");

    public static async Task<PostgresServer> StartAsync(string root)
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal)
            .Select(d => Path.Combine(d, "bin")).FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")))
            ?? throw new InvalidOperationException("PostgreSQL's initdb is not installed (Debian package postgresql): run tests/setup");
        var directory = Path.Combine(root, $"postgres-{Guid.NewGuid():N}"[..17]);
        Directory.CreateDirectory(directory);
        // The server runs as postgres: it must reach its directory (root's temp dirs are 0700).
        for (var dir = directory; dir != "/" && dir != Path.GetTempPath().TrimEnd('/'); dir = Path.GetDirectoryName(dir)!)
        {
            File.SetUnixFileMode(dir, File.GetUnixFileMode(dir) | UnixFileMode.OtherExecute);
        }

        var server = new PostgresServer(directory, bin, Tools.FreePort());
        await Tools.CheckAsync("chown", OsUser, directory);
        var password = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
        var pwfile = Path.Combine(directory, "superuser-password");
        await File.WriteAllTextAsync(pwfile, password + "\n");
        await Tools.CheckAsync("chown", OsUser, pwfile);
        await server.AsPostgresAsync("initdb", "-D", server.Data, "-U", "postgres", "--pwfile", pwfile, "-A", "scram-sha-256", "--no-sync", "-E", "UTF8", "--locale", "C");
        await File.AppendAllTextAsync(Path.Combine(server.Data, "postgresql.conf"),
            $"listen_addresses = '127.0.0.1'\nport = {server.Port}\nunix_socket_directories = '{directory}'\nfsync = off\nmax_connections = 200\n");
        await server.StartAsync();

        await File.WriteAllTextAsync(server.Passfile, $"127.0.0.1:{server.Port}:*:postgres:{password}\n127.0.0.1:{server.Port}:*:{Role}:{password}\n");
        File.SetUnixFileMode(server.Passfile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await server.SqlAsync($"CREATE ROLE {Role} LOGIN PASSWORD '{password}'");
        await server.SqlAsync($"CREATE DATABASE {Database} OWNER {Role}");
        return server;
    }

    /// <summary>Starts (again) the server; waits until it accepts connections.</summary>
    public async Task StartAsync() =>
        await AsPostgresAsync("pg_ctl", "-D", Data, "-l", LogFile, "-w", "-t", "60", "start");

    /// <summary>Stops the server at once (open sessions are cut, as a crash or an outage would).</summary>
    public async Task StopAsync() =>
        await AsPostgresAsync("pg_ctl", "-D", Data, "-m", "immediate", "-w", "stop");

    /// <summary>Runs SQL as the superuser; returns psql's unaligned output.</summary>
    public async Task<string> SqlAsync(string sql, string database = "postgres") =>
        (await Tools.CheckAsync("psql", ["-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            new Dictionary<string, string> { ["PGPASSFILE"] = Passfile })).Trim();

    public string Log() => File.Exists(LogFile) ? File.ReadAllText(LogFile) : string.Empty;

    private async Task AsPostgresAsync(string tool, params string[] arguments) =>
        await Tools.CheckAsync("runuser", ["-u", OsUser, "--", Path.Combine(Bin, tool), .. arguments]);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
        {
            // already stopped
        }
    }
}
