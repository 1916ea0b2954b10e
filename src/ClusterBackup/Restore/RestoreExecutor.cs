using System.Globalization;
using System.Runtime.ExceptionServices;
using ClusterBackup.Sources;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Restore;

/// <summary>
/// A node as the executor uses it: commands and uploads. A failed upload, and a command whose
/// connection failed, throw <see cref="IOException"/>.
/// </summary>
internal interface IRestoreNode
{
    Task<RestoreCommandResult> RunAsync(string command, CancellationToken cancellationToken);

    /// <summary>Writes <paramref name="content"/> to <paramref name="remotePath"/> as it streams; a failure of the content fails the upload.</summary>
    Task UploadAsync(RestoreContent content, string remotePath, CancellationToken cancellationToken);
}

internal sealed record RestoreCommandResult(int ExitStatus, string Output, string ErrorSummary)
{
    public bool Succeeded => ExitStatus == 0;
}

/// <summary>A restore step on a node failed; <see cref="Exception.Message"/> says what was undone or what stays.</summary>
internal sealed class RestoreStepFailedException(string node, RestoreStepKind step, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Node { get; } = node;

    public RestoreStepKind Step { get; } = step;
}

/// <summary>
/// The restore was interrupted (Ctrl-C, SIGTERM); <see cref="Exception.Message"/> says where, and
/// what was undone or what stays.
/// </summary>
internal sealed class RestoreInterruptedException(string message) : Exception(message);

/// <summary>
/// Carries out a <see cref="RestorePlan"/>. Every member is prepared at the same time, each member's
/// steps in order; a failure (or cancellation) while preparing stops the other members after the step
/// they are in, then undoes what was done, in reverse order, on every member touched: a command in
/// progress is never cut off, not even by an interruption, so that what it changed is known and
/// nothing still runs on a node while its undo does. The members
/// start one after another once all are prepared; a failure after the first member started is
/// reported with what stays in place, because the members then run the restored data.
/// </summary>
internal sealed partial class RestoreExecutor(ILogger<RestoreExecutor> logger, TimeProvider time)
{
    /// <summary>
    /// How long an undo waits before each try after the second, while its node cannot be reached: a
    /// connection lost for a moment (a node's network, sshd restarting) must not leave a member half
    /// restored for the operator to put back by hand. The first two tries follow each other at once.
    /// </summary>
    private static readonly TimeSpan[] UndoRetryDelays = [TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2)];

    public async Task<RestoreReport> ExecuteAsync(
        RestorePlan plan, Func<string, CancellationToken, Task<IRestoreNode>> connect, IReadOnlyDictionary<RestoreFile, RestoreContent> files, CancellationToken cancellationToken)
    {
        await PrepareAsync(plan.Steps.Where(s => s.Phase == RestorePhase.Prepare).ToList(), connect, files, cancellationToken);
        foreach (var step in plan.Steps.Where(s => s.Phase != RestorePhase.Prepare))
        {
            try
            {
                await RunAsync(await ConnectAsync(step.Node, connect, cancellationToken), step, files, cancellationToken);
            }
            catch (RestoreStepFailedException failure) when (step.LeftInPlace is not null)
            {
                throw new RestoreStepFailedException(failure.Node, failure.Step, $"{failure.Message}; {step.LeftInPlace}", failure.InnerException);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && step.LeftInPlace is not null)
            {
                throw new RestoreInterruptedException($"restore interrupted: node {step.Node}: {step.Kind.Describe()} cut short; {step.LeftInPlace}");
            }
            catch (Exception ex) when (ex is not (RestoreStepFailedException or OperationCanceledException) && step.LeftInPlace is not null)
            {
                // A connection lost mid-step: still the step's failure, with what stays in place.
                throw new RestoreStepFailedException(step.Node, step.Kind, $"{ex.Message}; {step.LeftInPlace}", ex);
            }
        }

        var sections = new List<(string, string)>();
        foreach (var query in plan.Report)
        {
            var node = await ConnectAsync(query.Node, connect, cancellationToken);
            var result = await node.RunAsync(query.Command, cancellationToken);
            sections.Add((query.Heading, (result.Succeeded ? result.Output : result.Output + result.ErrorSummary).TrimEnd()));
        }

        return new RestoreReport(sections);
    }

    /// <summary>
    /// Prepares every member at once. When one fails, or the restore is interrupted, every member
    /// stops after the step it is in: a command is never cut off (what a command changed must be
    /// known to be undone, and it must not run on while its undo does), an upload is (its undo holds
    /// either way). The failure reported is the first that was not itself the stop of another (an
    /// upload broken off because its sibling stopped); an interruption is reported as such, with
    /// what was undone.
    /// </summary>
    private async Task PrepareAsync(
        List<RestoreStep> steps, Func<string, CancellationToken, Task<IRestoreNode>> connect, IReadOnlyDictionary<RestoreFile, RestoreContent> files, CancellationToken cancellationToken)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var members = steps.GroupBy(s => s.Node).Select(g => (Steps: g.ToList(), Attempted: new List<(RestoreStep Step, bool Completed)>())).ToList();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();

        async Task PrepareMemberAsync(List<RestoreStep> memberSteps, List<(RestoreStep Step, bool Completed)> attempted)
        {
            var step = memberSteps[0];
            try
            {
                foreach (var next in memberSteps)
                {
                    step = next;
                    stopping.Token.ThrowIfCancellationRequested();
                    var node = await ConnectAsync(step.Node, connect, stopping.Token);
                    attempted.Add((step, false));
                    await RunAsync(node, step, files, step.Action is Upload ? stopping.Token : CancellationToken.None);
                    attempted[^1] = (step, true);
                }
            }
            catch (Exception ex)
            {
                // A connection lost mid-step (or any other surprise) still names node and step, and is undone.
                var failure = ex is RestoreStepFailedException or OperationCanceledException ? ex : new RestoreStepFailedException(step.Node, step.Kind, ex.Message, ex);
                failures.Enqueue(failure);
                await stopping.CancelAsync();
            }
        }

        await Task.WhenAll(members.Select(m => Task.Run(() => PrepareMemberAsync(m.Steps, m.Attempted), CancellationToken.None)));
        if (failures.IsEmpty)
        {
            return;
        }

        var done = members.SelectMany(m => m.Attempted).ToList();
        var reported = failures.FirstOrDefault(f => !Stopped(f)) ?? failures.First();
        if (reported is RestoreStepFailedException failure && !cancellationToken.IsCancellationRequested)
        {
            throw new RestoreStepFailedException(failure.Node, failure.Step, failure.Message + await UndoAsync(done, connect), failure.InnerException);
        }

        var undone = await UndoAsync(done, connect);
        if (cancellationToken.IsCancellationRequested)
        {
            // Each member's last step, which it finished (a command) or broke off (an upload) before the undo.
            var at = string.Join(", ", done.GroupBy(d => d.Step.Node).Select(g => $"{g.Key}: {g.Last().Step.Kind.Describe()}"));
            throw new RestoreInterruptedException($"restore interrupted while preparing{(at.Length == 0 ? string.Empty : $" ({at})")}{undone}");
        }

        ExceptionDispatchInfo.Throw(reported);

        static bool Stopped(Exception? ex)
        {
            for (; ex is not null; ex = ex.InnerException)
            {
                if (ex is OperationCanceledException)
                {
                    return true;
                }
            }

            return false;
        }
    }

    private static async Task<IRestoreNode> ConnectAsync(string node, Func<string, CancellationToken, Task<IRestoreNode>> connect, CancellationToken cancellationToken)
    {
        try
        {
            return await connect(node, cancellationToken);
        }
        catch (NodeOperationException ex)
        {
            throw new RestoreStepFailedException(node, RestoreStepKind.Connect, ex.Message, ex);
        }
    }

    private static async Task RunAsync(IRestoreNode node, RestoreStep step, IReadOnlyDictionary<RestoreFile, RestoreContent> files, CancellationToken cancellationToken)
    {
        switch (step.Action)
        {
            case RemoteCommand command:
                var result = await node.RunAsync(command.Command, cancellationToken);
                if (!result.Succeeded)
                {
                    throw new RestoreStepFailedException(step.Node, step.Kind, $"exit status {result.ExitStatus.ToString(CultureInfo.InvariantCulture)}: {result.ErrorSummary}");
                }

                break;
            case Upload upload:
                if (!files.TryGetValue(upload.File, out var content))
                {
                    throw new InvalidOperationException($"the plan uploads {upload.File}, which was not provided");
                }

                try
                {
                    await node.UploadAsync(content, upload.RemotePath, cancellationToken);
                }
                catch (IOException ex)
                {
                    throw new RestoreStepFailedException(step.Node, step.Kind, ex.Message, ex);
                }

                break;
            default:
                throw new InvalidOperationException($"unknown restore action {step.Action}");
        }
    }

    /// <summary>Undoes the attempted steps in reverse; returns the message's suffix naming the members rolled back and any undo that failed.</summary>
    private async Task<string> UndoAsync(List<(RestoreStep Step, bool Completed)> attempted, Func<string, CancellationToken, Task<IRestoreNode>> connect)
    {
        var failures = new List<string>();
        foreach (var (step, completed) in Enumerable.Reverse(attempted))
        {
            if (step.Undo is not { } undo || (undo.When == UndoWhen.Completed && !completed))
            {
                continue;
            }

            if (await UndoStepAsync(step, undo.Command, connect) is { } failure)
            {
                failures.Add($"{step.Node}: undo of {step.Kind.Describe()}: {failure}");
            }
        }

        var touched = attempted.Select(a => a.Step.Node).Distinct().ToList();
        foreach (var node in touched)
        {
            LogRolledBack(node);
        }

        var suffix = touched.Count == 0 ? string.Empty : $"; rolled back: {string.Join(", ", touched)} (data dirs and manifests as they were)";
        return failures.Count == 0 ? suffix : $"{suffix}; NOT undone, check by hand: {string.Join("; ", failures)}";
    }

    /// <summary>
    /// Runs one undo; returns why it failed, or null. A connection lost in the step being undone fails
    /// the first try, and the second runs over a new one at once; a node that cannot be reached is
    /// tried again after each of <see cref="UndoRetryDelays"/>. A command that ran and failed is not run again.
    /// </summary>
    private async Task<string?> UndoStepAsync(RestoreStep step, string command, Func<string, CancellationToken, Task<IRestoreNode>> connect)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var result = await (await connect(step.Node, CancellationToken.None)).RunAsync(command, CancellationToken.None);
                return result.Succeeded ? null : result.ErrorSummary;
            }
            catch (Exception ex) when (ex is NodeOperationException or IOException)
            {
                if (attempt > UndoRetryDelays.Length + 1)
                {
                    return ex.Message;
                }

                if (attempt > 1)
                {
                    await Task.Delay(UndoRetryDelays[attempt - 2], time, CancellationToken.None);
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rolled back {Node}: old data dir and static pod manifests returned")]
    private partial void LogRolledBack(string node);
}
