namespace ClusterBackup.Scheduling;

/// <summary>The daemon stopped by itself on an error: <c>run</c> exits 1, and systemd restarts it.</summary>
internal sealed class DaemonFailedException(string reason)
    : Exception($"the agent stopped: {reason}; nothing runs until it is started again");
