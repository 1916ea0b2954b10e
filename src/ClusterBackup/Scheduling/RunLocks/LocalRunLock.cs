using ClusterBackup.Backup;
using ClusterBackup.Catalog;
using ClusterBackup.Storage;

namespace ClusterBackup.Scheduling.RunLocks;

/// <summary>
/// The lock for one agent alone (<c>Scheduler:Store</c> "memory"): an exclusive flock on a file in
/// the state directory, shared by the daemon and the CLI on this host. The kernel drops it when the
/// process ends, however it ends.
/// </summary>
internal sealed class LocalRunLock(IBackupStore store, BackupCatalog catalog) : IClusterRunLock
{
    /// <summary>
    /// Where lock files go: systemd's StateDirectory for the unit; the package's state directory
    /// for a command on the same host; else (no package installed) a directory in the temp dir.
    /// </summary>
    public static string Directory()
    {
        if (Environment.GetEnvironmentVariable("STATE_DIRECTORY") is { Length: > 0 } state)
        {
            return Path.Combine(state.Split(':')[0], "locks");
        }

        return System.IO.Directory.Exists("/var/lib/cluster-backup")
            ? "/var/lib/cluster-backup/locks"
            : Path.Combine(Path.GetTempPath(), "cluster-backup-locks");
    }

    public Task<RunLockResult> TryAcquireAsync(string cluster, CancellationToken cancellationToken)
    {
        var directory = Directory();
        var path = Path.Combine(directory, RunLockKey.FileName(store.Describe(catalog.ClusterPrefix(cluster))));
        try
        {
            System.IO.Directory.CreateDirectory(directory, ReadableByAll | UnixFileMode.UserWrite);
            var created = !File.Exists(path);
            // FileShare.None is an exclusive flock(2) on Linux: refused while another process holds it.
            // The daemon's user only reads a lock file root created, and flock needs no more.
            var file = new FileStream(path, FileMode.OpenOrCreate, created ? FileAccess.ReadWrite : FileAccess.Read, FileShare.None);
            if (created)
            {
                File.SetUnixFileMode(file.SafeFileHandle, ReadableByAll | UnixFileMode.UserWrite);
            }

            return Task.FromResult<RunLockResult>(new RunLockHeld(file));
        }
        catch (IOException) when (File.Exists(path))
        {
            return Task.FromResult<RunLockResult>(new RunLockBusy($"another process on this host (the daemon or a 'backup' command; lock {path})"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new RunLockUnavailableException($"cannot open the run lock of cluster {cluster} ({path}): {ex.Message}", ex);
        }
    }

    private const UnixFileMode ReadableByAll = UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
}
