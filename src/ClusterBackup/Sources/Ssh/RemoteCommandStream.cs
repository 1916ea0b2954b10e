using Renci.SshNet;

namespace ClusterBackup.Sources.Ssh;

/// <summary>A command's standard output; reaching its end checks the exit status.</summary>
internal sealed class RemoteCommandStream(SshCommand command, Task execution, string node, string step, string commandText) : Stream
{
    private bool _checked;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await command.OutputStream.ReadAsync(buffer, cancellationToken);
        if (read == 0 && !_checked)
        {
            _checked = true;
            await execution.WaitAsync(cancellationToken);
            if (command.ExitStatus is not 0)
            {
                var error = command.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
                throw new NodeOperationException(node, step,
                    $"'{commandText}' failed with exit status {command.ExitStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}: {error ?? "no error output"}");
            }
        }

        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            command.Dispose();
        }

        base.Dispose(disposing);
    }
}
