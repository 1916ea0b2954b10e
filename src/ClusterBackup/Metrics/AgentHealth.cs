namespace ClusterBackup.Metrics;

/// <summary>
/// Whether the daemon is taking work: true once the scheduler runs, false again while stopping;
/// and, with a shared scheduler store, why it cannot reach it (the agent runs nothing meanwhile).
/// </summary>
internal sealed class AgentHealth
{
    private volatile bool _ready;
    private volatile string? _storeProblem;

    public bool Ready => _ready;

    /// <summary>Null while the scheduler store answers.</summary>
    public string? StoreProblem => _storeProblem;

    public bool Healthy => _ready && _storeProblem is null;

    /// <summary>What /healthz says.</summary>
    public string Describe() =>
        _storeProblem is { } problem ? $"scheduler store unreachable: {problem}" : !_ready ? "not ready" : "ok";

    public void MarkReady() => _ready = true;

    public void MarkStopping() => _ready = false;

    /// <summary>Records the store's state; true when it changed (so it is logged once per outage).</summary>
    public bool SetStoreProblem(string? problem)
    {
        var before = _storeProblem;
        _storeProblem = problem;
        return (before is null) != (problem is null);
    }
}
