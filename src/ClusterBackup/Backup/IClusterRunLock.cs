namespace ClusterBackup.Backup;

/// <summary>
/// At most one backup of a cluster at a time, across every process that writes its sets: the
/// daemon's schedule, a CLI <c>backup</c>, and other agents sharing a PostgreSQL scheduler.
/// </summary>
internal interface IClusterRunLock
{
    /// <summary>
    /// Takes the cluster's lock, or returns a <see cref="RunLockBusy"/> naming who holds it. Throws
    /// <see cref="RunLockUnavailableException"/> when the lock cannot be asked for at all.
    /// </summary>
    Task<RunLockResult> TryAcquireAsync(string cluster, CancellationToken cancellationToken);
}

internal abstract record RunLockResult;

/// <summary>The lock is held by this run until disposed.</summary>
internal sealed record RunLockHeld(IAsyncDisposable Release) : RunLockResult;

/// <summary>Another run holds the lock; <see cref="Holder"/> says which, as far as it is known.</summary>
internal sealed record RunLockBusy(string Holder) : RunLockResult;

/// <summary>Where the lock lives cannot be reached (PostgreSQL down, a lock directory not writable).</summary>
internal sealed class RunLockUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
