using ClusterBackup.Restore;
using ClusterBackup.Sources;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterBackup.Tests.Restore;

/// <summary>
/// The executor against recording nodes: each step of a two-member plan (with --pki, one node
/// restoring its backed-up etcd.yaml) is made to fail in turn, and what was undone, in which order, is checked.
/// The members are prepared at the same time, so only each member's own order is fixed.
/// </summary>
public sealed class RestoreExecutorTests
{
    private static readonly RestorePlan TwoMembers = RestorePlanner.Plan(
        Assessments.Of(
            Assessments.Member(1, 2, healthy: false),
            Assessments.Member(2, 2, healthy: false) with { BackedUpEtcdYaml = "kind: Pod\n" }),
        new RestoreRequest([], false, Pki: true),
        Assessments.Stamp);

    private static readonly Dictionary<RestoreFile, RestoreContent> Files = new()
    {
        [new RestoreFile(RestoreFileKind.Snapshot)] = RestoreContent.FromBytes("etcd-snapshot.db", [1]),
        [new RestoreFile(RestoreFileKind.Pki, "cp1")] = RestoreContent.FromBytes("pki-cp1.tar", [2]),
        [new RestoreFile(RestoreFileKind.Pki, "cp2")] = RestoreContent.FromBytes("pki-cp2.tar", [3]),
        [new RestoreFile(RestoreFileKind.EtcdYaml, "cp2")] = RestoreContent.FromBytes("etcd-cp2.yaml", [4]),
    };

    public static TheoryData<int> EveryStep => new(Enumerable.Range(0, TwoMembers.Steps.Count));

    /// <summary>Every node's commands and uploads, in the order they started, across nodes.</summary>
    private sealed class Nodes
    {
        private readonly Lock _lock = new();
        private readonly List<string> _log = [];

        public IReadOnlyList<string> Log
        {
            get
            {
                lock (_lock)
                {
                    return _log.ToList();
                }
            }
        }

        public string? FailNode { get; init; }

        public string? FailOn { get; init; }

        /// <summary>Makes the failing step throw this instead of exiting non-zero.</summary>
        public Exception? Throw { get; init; }

        /// <summary>Runs once a command or upload is logged, before it ends: (node, what, its token).</summary>
        public Func<string, string, CancellationToken, Task> During { get; set; } = (_, _, _) => Task.CompletedTask;

        /// <summary>The token the executor last connected with.</summary>
        public CancellationToken ConnectedWith { get; private set; }

        public Func<string, CancellationToken, Task<IRestoreNode>> Connect => (name, ct) =>
        {
            ConnectedWith = ct;
            return Task.FromResult<IRestoreNode>(new Node(this, name));
        };

        private void Add(string line)
        {
            lock (_lock)
            {
                _log.Add(line);
            }
        }

        private sealed class Node(Nodes nodes, string name) : IRestoreNode
        {
            public async Task<RestoreCommandResult> RunAsync(string command, CancellationToken cancellationToken)
            {
                nodes.Add($"{name}: {command}");
                await nodes.During(name, command, cancellationToken);
                if (nodes.Throw is not null && name == nodes.FailNode && command == nodes.FailOn)
                {
                    throw nodes.Throw;
                }

                return name == nodes.FailNode && command == nodes.FailOn
                    ? new RestoreCommandResult(3, string.Empty, "it broke")
                    : new RestoreCommandResult(0, $"output of {command}", string.Empty);
            }

            public async Task UploadAsync(RestoreContent content, string remotePath, CancellationToken cancellationToken)
            {
                nodes.Add($"{name}: upload {content.Description} {remotePath}");
                await nodes.During(name, remotePath, cancellationToken);
                if (name == nodes.FailNode && remotePath == nodes.FailOn)
                {
                    throw new IOException($"cannot upload {remotePath}: disk full");
                }
            }
        }
    }

    private static string Target(RestoreStep step) => step.Action switch
    {
        RemoteCommand command => command.Command,
        Upload upload => upload.RemotePath,
        _ => throw new InvalidOperationException(),
    };

    private static string Logged(RestoreStep step) => step.Action switch
    {
        RemoteCommand command => $"{step.Node}: {command.Command}",
        Upload upload => $"{step.Node}: upload {Files[upload.File].Description} {upload.RemotePath}",
        _ => throw new InvalidOperationException(),
    };

    private static List<RestoreStep> PreparationOf(string node) =>
        TwoMembers.Steps.Where(s => s.Node == node && s.Phase == RestorePhase.Prepare).ToList();

    /// <summary>The undo of what was tried, in reverse; an undo that is safe on a partial step also runs for the failing one.</summary>
    private static IEnumerable<string> UndoOf(IEnumerable<RestoreStep> tried, RestoreStep? failing) =>
        Enumerable.Reverse(tried.ToList())
            .Where(s => s.Undo is { } undo && (undo.When == UndoWhen.Attempted || s != failing))
            .Select(s => $"{s.Node}: {s.Undo!.Command}");

    /// <summary>
    /// Checks a failed preparation's log: each member ran its own steps in order, as far as it got,
    /// before anything was undone; then every tried step was undone, the members in reverse order,
    /// each member's steps in reverse. Returns what each member tried.
    /// </summary>
    private static Dictionary<string, List<RestoreStep>> AssertPreparedThenUndone(IReadOnlyList<string> log, RestoreStep? failing)
    {
        var tried = new Dictionary<string, List<RestoreStep>>();
        foreach (var node in new[] { "cp1", "cp2" })
        {
            var steps = PreparationOf(node);
            var lines = log.Where(l => l.StartsWith(node + ": ", StringComparison.Ordinal)).ToList();
            var count = Enumerable.Range(0, steps.Count + 1)
                .Where(n => lines.SequenceEqual(steps.Take(n).Select(Logged).Concat(UndoOf(steps.Take(n), failing))))
                .ToList();
            Assert.True(count.Count > 0, $"{node} did not run its steps in order, then undo them in reverse:\n{string.Join("\n", lines)}");
            tried[node] = steps.Take(count[^1]).ToList();
        }

        var ran = tried.Values.Sum(t => t.Count);
        Assert.Equal(UndoOf(tried["cp1"].Concat(tried["cp2"]), failing), log.Skip(ran));
        return tried;
    }

    private static Task<RestoreReport> ExecuteAsync(Nodes nodes, CancellationToken cancellationToken = default) =>
        new RestoreExecutor(NullLogger<RestoreExecutor>.Instance, TimeProvider.System).ExecuteAsync(TwoMembers, nodes.Connect, Files, cancellationToken);

    [Fact]
    public async Task Without_a_failure_each_member_is_prepared_in_order_then_they_start_in_turn_and_the_report_follows()
    {
        var nodes = new Nodes();

        var report = await ExecuteAsync(nodes);

        var log = nodes.Log;
        var prepared = TwoMembers.Steps.Count(s => s.Phase == RestorePhase.Prepare);
        foreach (var node in new[] { "cp1", "cp2" })
        {
            Assert.Equal(PreparationOf(node).Select(Logged), log.Take(prepared).Where(l => l.StartsWith(node + ": ", StringComparison.Ordinal)));
        }

        Assert.Equal(TwoMembers.Steps.Where(s => s.Phase != RestorePhase.Prepare).Select(Logged).Concat(TwoMembers.Report.Select(r => $"{r.Node}: {r.Command}")), log.Skip(prepared));
        Assert.Equal(TwoMembers.Report.Select(r => (r.Heading, $"output of {r.Command}")), report.Sections);
    }

    [Theory]
    [MemberData(nameof(EveryStep))]
    public async Task A_failure_at_any_step_names_node_and_step_and_while_preparing_undoes_what_was_tried_in_reverse(int failing)
    {
        var step = TwoMembers.Steps[failing];
        var nodes = new Nodes { FailNode = step.Node, FailOn = Target(step) };

        var ex = await Assert.ThrowsAsync<RestoreStepFailedException>(() => ExecuteAsync(nodes));

        Assert.Equal(step.Node, ex.Node);
        Assert.Equal(step.Kind, ex.Step);
        if (step.Phase == RestorePhase.Prepare)
        {
            var tried = AssertPreparedThenUndone(nodes.Log, step);
            Assert.Equal(step, tried[step.Node][^1]);
            var touched = tried.Where(t => t.Value.Count > 0).Select(t => t.Key);
            Assert.EndsWith($"; rolled back: {string.Join(", ", touched)} (data dirs and manifests as they were)", ex.Message, StringComparison.Ordinal);
        }
        else
        {
            var ran = TwoMembers.Steps.Take(failing + 1).Where(s => s.Phase != RestorePhase.Prepare).Select(Logged);
            Assert.Equal(ran, nodes.Log.Skip(TwoMembers.Steps.Count(s => s.Phase == RestorePhase.Prepare)));
            Assert.DoesNotContain("rolled back", ex.Message, StringComparison.Ordinal);
            Assert.EndsWith(step.LeftInPlace!, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_failed_snapshot_restore_on_the_second_member_returns_both_members_as_they_were()
    {
        var failing = TwoMembers.Steps.Single(s => s.Node == "cp2" && s.Kind == RestoreStepKind.SnapshotRestore);
        var cp1Done = Logged(PreparationOf("cp1")[^1]);
        var nodes = new Nodes { FailNode = "cp2", FailOn = Target(failing) };
        nodes.During = async (node, what, _) =>
        {
            // cp2 fails once cp1 is prepared, so the whole of cp1 is undone.
            while (node == "cp2" && what == Target(failing) && !nodes.Log.Contains(cp1Done))
            {
                await Task.Delay(10);
            }
        };

        var ex = await Assert.ThrowsAsync<RestoreStepFailedException>(() => ExecuteAsync(nodes));

        Assert.Equal("exit status 3: it broke; rolled back: cp1, cp2 (data dirs and manifests as they were)", ex.Message);
        var undone = nodes.Log.Skip(PreparationOf("cp1").Count + PreparationOf("cp2").IndexOf(failing) + 1).ToList();
        Assert.Equal(
        [
            "cp2: rm -rf /var/lib/etcd.restored-20261127T010203Z",
            "cp2: rm -f /backup/etcd.yaml",
            $"cp2: {NodeCommands.MoveStaticPodManifests("/backup", "/etc/kubernetes/manifests")}",
            $"cp2: {NodeCommands.PutBack("/etc/kubernetes/pki", "/etc/kubernetes/pki.before-restore-20261127T010203Z")}",
            "cp2: rm -f /backup/pki-20261126T221408Z.tar",
            "cp2: rm -f /backup/snapshot-20261126T221408Z.db",
            "cp1: if [ -e /var/lib/etcd.before-restore-20261127T010203Z ]; then rm -rf /var/lib/etcd && mv /var/lib/etcd.before-restore-20261127T010203Z /var/lib/etcd; else rm -rf /var/lib/etcd; fi",
            "cp1: rm -rf /var/lib/etcd.restored-20261127T010203Z",
            $"cp1: {NodeCommands.MoveStaticPodManifests("/backup", "/etc/kubernetes/manifests")}",
            $"cp1: {NodeCommands.PutBack("/etc/kubernetes/pki", "/etc/kubernetes/pki.before-restore-20261127T010203Z")}",
            "cp1: rm -f /backup/pki-20261126T221408Z.tar",
            "cp1: rm -f /backup/snapshot-20261126T221408Z.db",
        ],
        undone);
    }

    [Fact]
    public async Task A_member_that_fails_stops_the_other_after_the_command_it_is_in_which_is_not_cut_off_and_is_undone()
    {
        var move = PreparationOf("cp1").Single(s => s.Kind == RestoreStepKind.MoveDataDirAside);
        var staging = PreparationOf("cp2")[0];
        var nodes = new Nodes { FailNode = "cp2", FailOn = Target(staging) };
        var moving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool? cutOff = null;
        nodes.During = async (node, what, ct) =>
        {
            if (node == "cp2" && what == Target(staging))
            {
                await moving.Task; // cp2 fails while cp1 moves its data dir aside
            }
            else if (node == "cp1" && what == Target(move))
            {
                moving.SetResult();
                var stopping = nodes.ConnectedWith;
                await Task.Delay(TimeSpan.FromSeconds(30), stopping).ContinueWith(_ => { }, TaskScheduler.Default); // until the executor stops the members
                cutOff = ct.IsCancellationRequested;
            }
        };

        var ex = await Assert.ThrowsAsync<RestoreStepFailedException>(() => ExecuteAsync(nodes));

        Assert.Equal("cp2", ex.Node);
        Assert.Equal(RestoreStepKind.Staging, ex.Step);
        Assert.False(cutOff);
        var tried = AssertPreparedThenUndone(nodes.Log, staging);
        Assert.Equal(move, tried["cp1"][^1]);
        Assert.Contains($"cp1: {move.Undo!.Command}", nodes.Log);
        Assert.EndsWith("; rolled back: cp1, cp2 (data dirs and manifests as they were)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connection_lost_in_a_step_names_node_and_step_and_every_member_is_rolled_back()
    {
        var failing = PreparationOf("cp2").Single(s => s.Kind == RestoreStepKind.StopStaticPods);
        var nodes = new Nodes { FailNode = "cp2", FailOn = Target(failing), Throw = new Renci.SshNet.Common.SshConnectionException("An established connection was aborted") };
        nodes.During = async (node, what, _) =>
        {
            // The connection is lost once cp1 has begun too.
            while (node == "cp2" && what == Target(failing) && !nodes.Log.Any(l => l.StartsWith("cp1: ", StringComparison.Ordinal)))
            {
                await Task.Delay(10);
            }
        };

        var ex = await Assert.ThrowsAsync<RestoreStepFailedException>(() => ExecuteAsync(nodes));

        Assert.Equal("cp2", ex.Node);
        Assert.Equal(RestoreStepKind.StopStaticPods, ex.Step);
        Assert.StartsWith("An established connection was aborted; rolled back: cp1, cp2", ex.Message, StringComparison.Ordinal);
        AssertPreparedThenUndone(nodes.Log, failing);
    }

    [Theory]
    [InlineData(1, false)] // the connection was lost in the step before: the second try, over a new one, undoes it
    [InlineData(3, false)] // the node could not be reached for a moment
    [InlineData(5, false)]
    [InlineData(6, true)] // 3.7 s without the node: named, to be checked by hand
    public async Task An_undo_that_fails_on_the_connection_is_tried_again_for_a_few_seconds_and_only_then_named(int lost, bool named)
    {
        var failing = PreparationOf("cp2").Single(s => s.Kind == RestoreStepKind.SnapshotRestore);
        var stopped = PreparationOf("cp2").Single(s => s.Kind == RestoreStepKind.StopStaticPods);
        var nodes = new Nodes { FailNode = "cp2", FailOn = Target(failing) };
        var tries = 0;
        nodes.During = (node, what, _) =>
            node == "cp2" && what == stopped.Undo!.Command && Interlocked.Increment(ref tries) <= lost
                ? throw new IOException("the SSH connection failed: Client not connected.")
                : Task.CompletedTask;

        var ex = await Assert.ThrowsAsync<RestoreStepFailedException>(() => ExecuteAsync(nodes));

        Assert.Equal(RestoreStepKind.SnapshotRestore, ex.Step);
        Assert.Equal(Math.Min(lost + 1, 6), nodes.Log.Count(l => l == $"cp2: {stopped.Undo!.Command}"));
        Assert.Equal(named, ex.Message.Contains("NOT undone, check by hand: cp2: undo of stop static pods", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_connection_lost_once_members_started_names_node_and_step_and_what_stays_in_place()
    {
        var failing = TwoMembers.Steps.First(s => s.Node == "cp2" && s.Kind == RestoreStepKind.WaitForHealth);
        var nodes = new Nodes { FailNode = "cp2", FailOn = Target(failing), Throw = new Renci.SshNet.Common.SshConnectionException("An established connection was aborted") };

        var ex = await Assert.ThrowsAsync<RestoreStepFailedException>(() => ExecuteAsync(nodes));

        Assert.Equal("cp2", ex.Node);
        Assert.Equal(RestoreStepKind.WaitForHealth, ex.Step);
        Assert.Equal($"An established connection was aborted; {failing.LeftInPlace}", ex.Message);
        Assert.Equal(Logged(failing), nodes.Log[^1]);
    }

    [Fact]
    public async Task A_data_dir_that_could_not_be_moved_aside_is_never_removed_by_the_undo()
    {
        var failing = TwoMembers.Steps.First(s => s.Kind == RestoreStepKind.MoveDataDirAside);
        var nodes = new Nodes { FailNode = failing.Node, FailOn = Target(failing) };

        await Assert.ThrowsAsync<RestoreStepFailedException>(() => ExecuteAsync(nodes));

        Assert.DoesNotContain(nodes.Log, l => l.StartsWith(failing.Node, StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(l, @"rm -rf /var/lib/etcd($|[ ;])"));
        Assert.Contains($"{failing.Node}: rm -rf /var/lib/etcd.restored-20261127T010203Z", nodes.Log);
    }

    [Fact]
    public async Task An_interruption_while_preparing_lets_the_command_in_progress_end_then_undoes_what_was_done_and_says_so()
    {
        using var cancel = new CancellationTokenSource();
        var stopAt = PreparationOf("cp1").First(s => s.Kind == RestoreStepKind.WaitForEtcdToStop);
        var nodes = new Nodes();
        bool? cutOff = null;
        nodes.During = async (node, what, ct) =>
        {
            if (node == "cp1" && what == Target(stopAt))
            {
                await cancel.CancelAsync();
                await Task.Delay(TimeSpan.FromMilliseconds(200), CancellationToken.None);
                cutOff = ct.IsCancellationRequested;
            }
        };

        var ex = await Assert.ThrowsAsync<RestoreInterruptedException>(() =>
            new RestoreExecutor(NullLogger<RestoreExecutor>.Instance, TimeProvider.System).ExecuteAsync(TwoMembers, nodes.Connect, Files, cancel.Token));

        Assert.False(cutOff);
        var tried = AssertPreparedThenUndone(nodes.Log, failing: null);
        Assert.Equal(stopAt, tried["cp1"][^1]);
        Assert.Equal("cp1: rm -f /backup/snapshot-20261126T221408Z.db", nodes.Log[^1]);
        Assert.Contains($"cp1: {NodeCommands.MoveStaticPodManifests("/backup", "/etc/kubernetes/manifests")}", nodes.Log);
        Assert.Contains($"cp1: {NodeCommands.PutBack("/etc/kubernetes/pki", "/etc/kubernetes/pki.before-restore-20261127T010203Z")}", nodes.Log);
        Assert.StartsWith($"restore interrupted while preparing (cp1: {stopAt.Kind.Describe()}", ex.Message, StringComparison.Ordinal);
        Assert.Matches(@"; rolled back: cp1(, cp2)? \(data dirs and manifests as they were\)$", ex.Message); // cp2 may not have begun
    }
}
