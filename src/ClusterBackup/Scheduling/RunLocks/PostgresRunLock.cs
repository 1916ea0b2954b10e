using ClusterBackup.Backup;
using ClusterBackup.Catalog;
using ClusterBackup.Storage;
using Npgsql;

namespace ClusterBackup.Scheduling.RunLocks;

/// <summary>
/// The lock for agents sharing a PostgreSQL scheduler: a session-level advisory lock on a
/// connection held for the run. PostgreSQL drops it when the session ends, so an agent killed
/// mid-run frees its clusters as soon as its connection closes.
/// </summary>
internal sealed class PostgresRunLock(SchedulerDatabase database, IBackupStore store, BackupCatalog catalog) : IClusterRunLock
{
    /// <summary>The first key of every lock this agent takes ("CBKP"), apart from other applications' locks.</summary>
    public const int AdvisoryClassId = 0x43424B50;

    public async Task<RunLockResult> TryAcquireAsync(string cluster, CancellationToken cancellationToken)
    {
        var objectId = RunLockKey.AdvisoryObjectId(store.Describe(catalog.ClusterPrefix(cluster)));
        NpgsqlConnection? connection = null;
        try
        {
            connection = await database.OpenAsync(cancellationToken);
            await using (var take = new NpgsqlCommand("SELECT pg_try_advisory_lock($1, $2)", connection))
            {
                take.Parameters.Add(new NpgsqlParameter { Value = AdvisoryClassId });
                take.Parameters.Add(new NpgsqlParameter { Value = objectId });
                if ((bool)(await take.ExecuteScalarAsync(cancellationToken))!)
                {
                    var held = new Held(connection, objectId);
                    connection = null;
                    return new RunLockHeld(held);
                }
            }

            await using var who = new NpgsqlCommand(
                "SELECT a.application_name, coalesce(host(a.client_addr), 'local') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid " +
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 2",
                connection);
            who.Parameters.Add(new NpgsqlParameter { Value = AdvisoryClassId });
            who.Parameters.Add(new NpgsqlParameter { Value = objectId });
            await using var reader = await who.ExecuteReaderAsync(cancellationToken);
            return new RunLockBusy(await reader.ReadAsync(cancellationToken)
                ? $"{reader.GetString(0)} (from {reader.GetString(1)})"
                : "another agent");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new RunLockUnavailableException($"cannot take the run lock of cluster {cluster} in PostgreSQL ({database.Describe()}): {ex.Message}", ex);
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Unlocks explicitly: a pooled connection goes back to the pool still holding its session's
    /// locks. A connection that cannot unlock is broken, and its session (with the lock) ends with it.
    /// </summary>
    private sealed class Held(NpgsqlConnection connection, int objectId) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock($1, $2)", connection);
                unlock.Parameters.Add(new NpgsqlParameter { Value = AdvisoryClassId });
                unlock.Parameters.Add(new NpgsqlParameter { Value = objectId });
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await unlock.ExecuteScalarAsync(timeout.Token);
            }
            catch (Exception ex) when (ex is NpgsqlException or OperationCanceledException or InvalidOperationException)
            {
                NpgsqlConnection.ClearPool(connection);
            }
            finally
            {
                await connection.DisposeAsync();
            }
        }
    }
}
