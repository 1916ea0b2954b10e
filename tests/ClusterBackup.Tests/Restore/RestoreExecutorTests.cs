using ClusterBackup.Restore;
using ClusterBackup.Sources;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterBackup.Tests.Restore;

/// <summary>
/// The executor against recording nodes: each step of a two-member plan (with --pki, one node
/// restoring its backed-up etcd.yaml) is made to fail in turn, and what was undone, in which order, is checked.
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

    /// <summary>Every node's commands and uploads, in the order they ran, across nodes.</summary>
    private sealed class Nodes
    {
        public List<string> Log { get; } = [];

        public string? FailNode { get; init; }

        public string? FailOn { get; init; }

        public Func<string, CancellationToken, Task<IRestoreNode>> Connect => (name, _) => Task.FromResult<IRestoreNode>(new Node(this, name));

        private sealed class Node(Nodes nodes, string name) : IRestoreNode
        {
            public Task<RestoreCommandResult> RunAsync(string command, CancellationToken cancellationToken)
            {
                nodes.Log.Add($"{name}: {command}");
                return Task.FromResult(name == nodes.FailNode && command == nodes.FailOn
                    ? new RestoreCommandResult(3, string.Empty, "it broke")
                    : new RestoreCommandResult(0, $"output of {command}", string.Empty));
            }

            public Task UploadAsync(RestoreContent content, string remotePath, CancellationToken cancellationToken)
            {
                nodes.Log.Add($"{name}: upload {content.Description} {remotePath}");
                return name == nodes.FailNode && remotePath == nodes.FailOn ? throw new IOException($"cannot upload {remotePath}: disk full") : Task.CompletedTask;
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

    private static Task<RestoreReport> ExecuteAsync(Nodes nodes, CancellationToken cancellationToken = default) =>
        new RestoreExecutor(NullLogger<RestoreExecutor>.Instance).ExecuteAsync(TwoMembers, nodes.Connect, Files, cancellationToken);

    [Fact]
    public async Task Without_a_failure_every_step_runs_once_in_order_and_the_report_follows()
    {
        var nodes = new Nodes();

        var report = await ExecuteAsync(nodes);

        Assert.Equal(TwoMembers.Steps.Select(Logged).Concat(TwoMembers.Report.Select(r => $"{r.Node}: {r.Command}")), nodes.Log);
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
        var tried = TwoMembers.Steps.Take(failing + 1).ToList();
        Assert.Equal(tried.Select(Logged), nodes.Log.Take(tried.Count));
        var undone = nodes.Log.Skip(tried.Count).ToList();
        if (step.Phase == RestorePhase.Prepare)
        {
            // Reverse order; an undo that is safe on a partial step also runs for the failing one.
            var expected = Enumerable.Reverse(tried)
                .Where(s => s.Undo is { } undo && (undo.When == UndoWhen.Attempted || s != step))
                .Select(s => $"{s.Node}: {s.Undo!.Command}");
            Assert.Equal(expected, undone);
            Assert.EndsWith($"; rolled back: {string.Join(", ", tried.Select(s => s.Node).Distinct())} (data dirs and manifests as they were)", ex.Message, StringComparison.Ordinal);
        }
        else
        {
            Assert.Empty(undone);
            Assert.DoesNotContain("rolled back", ex.Message, StringComparison.Ordinal);
            Assert.EndsWith(step.LeftInPlace!, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_failed_snapshot_restore_on_the_second_member_returns_both_members_as_they_were()
    {
        var failing = TwoMembers.Steps.Single(s => s.Node == "cp2" && s.Kind == RestoreStepKind.SnapshotRestore);
        var nodes = new Nodes { FailNode = "cp2", FailOn = Target(failing) };

        var ex = await Assert.ThrowsAsync<RestoreStepFailedException>(() => ExecuteAsync(nodes));

        Assert.Equal("exit status 3: it broke; rolled back: cp1, cp2 (data dirs and manifests as they were)", ex.Message);
        var undone = nodes.Log.SkipWhile(l => l != $"cp2: {Target(failing)}").Skip(1).ToList();
        Assert.Equal(
        [
            "cp2: if [ -e /var/lib/etcd.before-restore-20261127T010203Z ]; then rm -rf /var/lib/etcd && mv /var/lib/etcd.before-restore-20261127T010203Z /var/lib/etcd; else rm -rf /var/lib/etcd; fi",
            "cp2: rm -f /backup/etcd.yaml",
            $"cp2: {NodeCommands.MoveStaticPodManifests("/backup", "/etc/kubernetes/manifests")}",
            $"cp2: {NodeCommands.PutBack("/etc/kubernetes/pki", "/etc/kubernetes/pki.before-restore-20261127T010203Z")}",
            "cp2: rm -f /backup/pki-20261126T221408Z.tar",
            "cp2: rm -f /backup/snapshot-20261126T221408Z.db",
            "cp1: if [ -e /var/lib/etcd.before-restore-20261127T010203Z ]; then rm -rf /var/lib/etcd && mv /var/lib/etcd.before-restore-20261127T010203Z /var/lib/etcd; else rm -rf /var/lib/etcd; fi",
            $"cp1: {NodeCommands.MoveStaticPodManifests("/backup", "/etc/kubernetes/manifests")}",
            $"cp1: {NodeCommands.PutBack("/etc/kubernetes/pki", "/etc/kubernetes/pki.before-restore-20261127T010203Z")}",
            "cp1: rm -f /backup/pki-20261126T221408Z.tar",
            "cp1: rm -f /backup/snapshot-20261126T221408Z.db",
        ],
        undone);
    }

    [Fact]
    public async Task A_data_dir_that_could_not_be_moved_aside_is_never_removed_by_the_undo()
    {
        var failing = TwoMembers.Steps.First(s => s.Kind == RestoreStepKind.MoveDataDirAside);
        var nodes = new Nodes { FailNode = failing.Node, FailOn = Target(failing) };

        await Assert.ThrowsAsync<RestoreStepFailedException>(() => ExecuteAsync(nodes));

        Assert.DoesNotContain(nodes.Log, l => l.Contains("rm -rf /var/lib/etcd", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cancellation_while_preparing_undoes_what_was_done_and_stays_a_cancellation()
    {
        using var cancel = new CancellationTokenSource();
        var nodes = new Nodes();
        var stopAt = TwoMembers.Steps.First(s => s.Kind == RestoreStepKind.WaitForEtcdToStop);
        Task<IRestoreNode> Connect(string name, CancellationToken ct)
        {
            if (nodes.Log.Count > 0 && nodes.Log[^1] == Logged(stopAt))
            {
                cancel.Cancel();
                ct.ThrowIfCancellationRequested();
            }

            return nodes.Connect(name, ct);
        }

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new RestoreExecutor(NullLogger<RestoreExecutor>.Instance).ExecuteAsync(TwoMembers, Connect, Files, cancel.Token));

        Assert.Equal($"cp1: {NodeCommands.MoveStaticPodManifests("/backup", "/etc/kubernetes/manifests")}", nodes.Log[^4]);
        Assert.Equal($"cp1: {NodeCommands.PutBack("/etc/kubernetes/pki", "/etc/kubernetes/pki.before-restore-20261127T010203Z")}", nodes.Log[^3]);
        Assert.Equal("cp1: rm -f /backup/snapshot-20261126T221408Z.db", nodes.Log[^1]);
    }
}
