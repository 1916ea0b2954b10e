using ClusterBackup.Scheduling;

namespace ClusterBackup.Tests.Scheduling;

public sealed class RunGateTests
{
    [Fact]
    public void A_busy_cluster_is_skipped_and_other_clusters_are_not()
    {
        var gate = new RunGate();

        using var first = gate.TryEnter("a");

        Assert.NotNull(first);
        Assert.Null(gate.TryEnter("a"));
        using var other = gate.TryEnter("b");
        Assert.NotNull(other);
    }

    [Fact]
    public void Leaving_frees_the_cluster_once_even_when_disposed_twice()
    {
        var gate = new RunGate();
        var first = gate.TryEnter("a")!;

        first.Dispose();
        first.Dispose();

        using var second = gate.TryEnter("a");
        Assert.NotNull(second);
        Assert.Null(gate.TryEnter("a"));
    }

    [Fact]
    public async Task A_verification_waits_for_the_backup_instead_of_being_skipped()
    {
        var gate = new RunGate();
        var backup = gate.TryEnter("a")!;

        var verification = gate.EnterAsync("a", CancellationToken.None);
        await Task.Delay(50);
        Assert.False(verification.IsCompleted);

        backup.Dispose();
        using var entered = await verification.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Null(gate.TryEnter("a"));
    }
}
