namespace ClusterBackup.Configuration;

/// <summary>
/// When the daemon tries a failed backup again: pure, from the failure's time and the cluster's
/// next scheduled firing. A run that failed for a moment (a node rebooting, storage restarting)
/// should not leave the cluster without a set until the next firing, hours later.
/// </summary>
internal sealed record RetryPolicy(int Attempts, TimeSpan Delay)
{
    public const int MaxAttempts = 10;

    public const int MaxDelaySeconds = 86_400;

    /// <summary>
    /// When to retry after a run that failed at <paramref name="failedAt"/>; <paramref name="attempt"/>
    /// is that run's: 0 for a scheduled, catch-up or recovered firing, n for the n-th retry. The
    /// delay doubles with each retry. Null when the retries are used up, or when the retry would
    /// not come before <paramref name="nextScheduled"/>: that firing is the next try.
    /// </summary>
    public DateTimeOffset? NextRetry(int attempt, DateTimeOffset failedAt, DateTimeOffset? nextScheduled)
    {
        if (attempt < 0 || attempt >= Attempts)
        {
            return null;
        }

        var at = failedAt + Delay * (1L << attempt);
        return nextScheduled is { } next && at >= next ? null : at;
    }
}
