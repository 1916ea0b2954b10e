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
    /// <summary>Where lock files go: systemd's StateDirectory for the unit, the package's state directory for the CLI, else a private temp dir.</summary>
    public static IEnumerable<string> Directories()
    {
        if (Environment.GetEnvironmentVariable("STATE_DIRECTORY") is { Length: > 0 } state)
        {
            yield return Path.Combine(state.Split(':')[0], "locks");
        }

        yield return "/var/lib/cluster-backup/locks";
        yield return Path.Combine(Path.GetTempPath(), $"cluster-backup-locks-{Environment.UserName}");
    }

    public Task<RunLockResult> TryAcquireAsync(string cluster, CancellationToken cancellationToken)
    {
        var name = RunLockKey.FileName(store.Describe(catalog.ClusterPrefix(cluster)));
        var problems = new List<string>();
        foreach (var directory in Directories())
        {
            if (!Directory.Exists(Path.GetDirectoryName(directory)) && directory.StartsWith("/var/lib/", StringComparison.Ordinal))
            {
                continue; // the package is not installed here
            }

            var path = Path.Combine(directory, name);
            try
            {
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                    | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
                // FileShare.None is an exclusive flock(2) on Linux: refused while another process holds it.
                var file = new FileStream(path, FileMode.OpenOrCreate, File.Exists(path) ? FileAccess.Read : FileAccess.ReadWrite, FileShare.None);
                return Task.FromResult<RunLockResult>(new RunLockHeld(file));
            }
            catch (IOException) when (File.Exists(path))
            {
                return Task.FromResult<RunLockResult>(new RunLockBusy($"another process on this host (the daemon or a 'backup' command; lock {path})"));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                problems.Add($"{path}: {ex.Message}");
            }
        }

        throw new RunLockUnavailableException($"cannot create the run lock of cluster {cluster}: {string.Join("; ", problems)}");
    }
}
