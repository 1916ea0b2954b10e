namespace ClusterBackup.Metrics;

/// <summary>Whether the daemon is taking work: true once the scheduler runs, false again while stopping.</summary>
internal sealed class AgentHealth
{
    private volatile bool _ready;

    public bool Ready => _ready;

    public void MarkReady() => _ready = true;

    public void MarkStopping() => _ready = false;
}
