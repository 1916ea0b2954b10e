using ClusterBackup.Streams;
using Renci.SshNet;

namespace ClusterBackup.Sources.Ssh;

/// <summary>A command's standard output; reaching its end checks the exit status.</summary>
internal sealed class RemoteCommandStream(SshCommand command, Task execution, string node, NodeStep step, string commandText) : ReadOnlyStream
{
    private bool _checked;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await command.OutputStream.ReadAsync(buffer, cancellationToken);
        if (read == 0 && !_checked)
        {
            _checked = true;
            await execution.WaitAsync(cancellationToken);
            if (command.ExitStatus is not 0)
            {
                var error = CommandResult.LastLineOf(command.Error);
                throw new NodeOperationException(node, step,
                    $"'{commandText}' failed with exit status {command.ExitStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}: {error ?? "no error output"}");
            }
        }

        return read;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            command.Dispose();
        }

        base.Dispose(disposing);
    }
}
