using System.Security.Cryptography;
using System.Text;
using ClusterBackup.Storage;

namespace ClusterBackup.Catalog;

/// <summary>A set id held by one run: its marker object is the first thing under the set's prefix.</summary>
internal sealed record SetReservation(string Cluster, SetId Id, DateTimeOffset StartedAt, string MarkerKey);

/// <summary>
/// Gives each run a set id no other run has. Two runs of a cluster in the same second (two
/// processes, the daemon and the CLI, two agents) must never write into one set.
/// <para>
/// A run writes a marker with a name of its own (<c>.reservation-{random}</c>) under the set's
/// prefix, then lists the prefix: it holds the id only if its marker is the only object there;
/// otherwise it removes its marker and tries a later second. If two runs both held an id, each
/// listing would have preceded the other's marker, which is impossible: so at most one holds it,
/// on any store whose listings show every completed write (AWS S3, MinIO, Ceph, s3rver, moto, a
/// directory). It needs no conditional write, so it holds on servers that ignore
/// <c>If-None-Match</c> too. Two runs that see each other both back off, each to a random moment
/// of the next few seconds, spread wider while the contention lasts.
/// </para>
/// </summary>
internal sealed class SetReservations(IBackupStore store, BackupCatalog catalog, TimeProvider time)
{
    public const string MarkerPrefix = ".reservation-";
    private const int MaxAttempts = 30;

    public async Task<SetReservation> ReserveAsync(string cluster, CancellationToken cancellationToken = default)
    {
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        for (var attempt = 1; ; attempt++)
        {
            var now = time.GetUtcNow();
            var id = SetId.At(now);
            if ((await catalog.SetKeysAsync(cluster, id, cancellationToken)).Count == 0)
            {
                var marker = catalog.ArtifactKey(cluster, id, MarkerPrefix + token);
                var body = Encoding.UTF8.GetBytes($"{{\"host\":\"{Environment.MachineName}\",\"pid\":{Environment.ProcessId},\"startedAt\":\"{now:O}\"}}\n");
                if (await store.CreateExclusiveAsync(marker, body, cancellationToken))
                {
                    if (await catalog.SetKeysAsync(cluster, id, cancellationToken) is [var only] && only == marker)
                    {
                        return new SetReservation(cluster, id, now, marker);
                    }

                    await store.DeleteAsync(marker, CancellationToken.None);
                }
            }

            if (attempt == MaxAttempts)
            {
                throw new StorageException(
                    $"no set id was free for cluster {cluster} in {MaxAttempts} tries under {store.Describe(catalog.ClusterPrefix(cluster))}: other runs of it keep starting at the same time");
            }

            // Spread the retries over more seconds as contention goes on: runs that pick different
            // seconds never contend, and those that pick the same one rarely meet in the same instant.
            var spread = TimeSpan.FromMilliseconds(RandomNumberGenerator.GetInt32(0, 1000 * Math.Min(attempt, 4)));
            await Task.Delay(id.Next().StartedAt - now + spread, time, cancellationToken);
        }
    }
}
