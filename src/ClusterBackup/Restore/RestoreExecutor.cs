using System.Globalization;
using ClusterBackup.Sources;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Restore;

/// <summary>A node as the executor uses it: commands and uploads. Failures of an upload are <see cref="IOException"/>s.</summary>
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
/// Carries out a <see cref="RestorePlan"/>, step by step. A failure (or cancellation) while preparing
/// undoes what was done, in reverse order, on every member touched; a failure after the first
/// member started is reported with what stays in place, because the members then run the restored data.
/// </summary>
internal sealed partial class RestoreExecutor(ILogger<RestoreExecutor> logger)
{
    public async Task<RestoreReport> ExecuteAsync(
        RestorePlan plan, Func<string, CancellationToken, Task<IRestoreNode>> connect, IReadOnlyDictionary<RestoreFile, RestoreContent> files, CancellationToken cancellationToken)
    {
        var attempted = new List<(RestoreStep Step, bool Completed)>();
        foreach (var step in plan.Steps)
        {
            try
            {
                var node = await ConnectAsync(step.Node, connect, cancellationToken);
                attempted.Add((step, false));
                await RunAsync(node, step, files, cancellationToken);
                attempted[^1] = (step, true);
            }
            catch (RestoreStepFailedException failure) when (step.Phase == RestorePhase.Prepare)
            {
                throw new RestoreStepFailedException(failure.Node, failure.Step, failure.Message + await UndoAsync(attempted, connect), failure.InnerException);
            }
            catch (OperationCanceledException) when (step.Phase == RestorePhase.Prepare)
            {
                await UndoAsync(attempted, connect);
                throw;
            }
            catch (RestoreStepFailedException failure) when (step.LeftInPlace is not null)
            {
                throw new RestoreStepFailedException(failure.Node, failure.Step, $"{failure.Message}; {step.LeftInPlace}", failure.InnerException);
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

            try
            {
                var node = await connect(step.Node, CancellationToken.None);
                var result = await node.RunAsync(undo.Command, CancellationToken.None);
                if (!result.Succeeded)
                {
                    failures.Add($"{step.Node}: undo of {step.Kind.Describe()}: {result.ErrorSummary}");
                }
            }
            catch (Exception ex) when (ex is NodeOperationException or IOException)
            {
                failures.Add($"{step.Node}: undo of {step.Kind.Describe()}: {ex.Message}");
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rolled back {Node}: old data dir and static pod manifests returned")]
    private partial void LogRolledBack(string node);
}
