using ClusterBackup.Configuration;

namespace ClusterBackup.Tests.Configuration;

public sealed class RetryPolicyTests
{
    private static readonly DateTimeOffset FailedAt = new(2026, 12, 7, 6, 0, 30, TimeSpan.Zero);

    [Theory]
    [InlineData(0, 5)]
    [InlineData(1, 10)]
    [InlineData(2, 20)]
    public void The_delay_doubles_with_each_retry(int attempt, int minutes)
    {
        var policy = new RetryPolicy(3, TimeSpan.FromMinutes(5));

        Assert.Equal(FailedAt.AddMinutes(minutes), policy.NextRetry(attempt, FailedAt, FailedAt.AddHours(6)));
    }

    [Theory]
    [InlineData(3, 3)]
    [InlineData(0, 0)]
    [InlineData(10, 10)]
    public void Once_the_retries_are_used_up_there_is_none(int attempts, int attempt)
    {
        Assert.Null(new RetryPolicy(attempts, TimeSpan.FromMinutes(5)).NextRetry(attempt, FailedAt, null));
    }

    [Fact]
    public void A_retry_that_would_not_come_before_the_next_scheduled_firing_is_left_to_that_firing()
    {
        var policy = new RetryPolicy(3, TimeSpan.FromMinutes(5));

        Assert.Null(policy.NextRetry(0, FailedAt, FailedAt.AddMinutes(5)));
        Assert.Null(policy.NextRetry(2, FailedAt, FailedAt.AddMinutes(15)));
        Assert.Equal(FailedAt.AddMinutes(5), policy.NextRetry(0, FailedAt, FailedAt.AddMinutes(5).AddSeconds(1)));
    }

    [Fact]
    public void Without_a_next_firing_the_retries_still_come_and_the_longest_delay_does_not_overflow()
    {
        var policy = new RetryPolicy(RetryPolicy.MaxAttempts, TimeSpan.FromSeconds(RetryPolicy.MaxDelaySeconds));

        Assert.Equal(FailedAt.AddDays(512), policy.NextRetry(RetryPolicy.MaxAttempts - 1, FailedAt, null));
    }
}
