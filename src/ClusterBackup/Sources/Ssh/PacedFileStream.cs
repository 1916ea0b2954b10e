using System.Globalization;
using System.Text;
using ClusterBackup.Streams;
using Renci.SshNet;

namespace ClusterBackup.Sources.Ssh;

/// <summary>
/// A large file on a node, read over one exec channel at its reader's pace
/// (<see cref="NodeCommands.ReadInSlices"/>). SSH.NET grants every channel a window of gigabytes,
/// so a command's output arrives as fast as the node sends it and waits in memory; and SSH.NET's
/// SFTP reads keep up to 100 requests in flight, each answered into an array of its own. Here the
/// node sends a slice only when asked for one, and this stream asks for at most
/// <see cref="SlicesAhead"/> slices beyond the one being read: whatever the file's size, at most
/// (<see cref="SlicesAhead"/> + 1) × <see cref="SliceMiB"/> MiB wait in memory, in one buffer
/// (SSH.NET's, which grows by doubling to hold them). The stream ends only after every byte of the
/// size the node announced, and the command's exit status 0; a command that ends early fails the read.
/// </summary>
/// <remarks>
/// One 4 MiB slice ahead gives the node's next <c>dd</c> the time the agent takes to read the
/// current slice to start and arrive: some 40 ms at 100 MB/s, enough here and over a round trip
/// shorter than that. On a 4.3 GB snapshot two ahead peaked about 17 MiB higher for no faster
/// transfer, and 2 MiB slices peaked 10 MiB lower for a fifth slower one (README, Performance).
/// </remarks>
internal sealed class PacedFileStream : ReadOnlyStream
{
    public const int SliceMiB = 4;
    public const int SlicesAhead = 1;
    private const int SliceBytes = SliceMiB * 1024 * 1024;

    private readonly SshCommand _command;
    private readonly Task _execution;
    private readonly Stream _input;
    private readonly string _node;
    private readonly NodeStep _step;
    private readonly string _path;
    private readonly long _slices;
    private long _received;
    private long _requested;
    private bool _finished;

    private PacedFileStream(SshCommand command, Task execution, Stream input, string node, NodeStep step, string path, long size)
    {
        _command = command;
        _execution = execution;
        _input = input;
        _node = node;
        _step = step;
        _path = path;
        Size = size;
        // An empty file is still asked for once: SSH.NET ends the command's input (EOF) only after it sent some.
        _slices = Math.Max(1, (size + SliceBytes - 1) / SliceBytes);
    }

    /// <summary>The file's size, as the node announced it before the first byte.</summary>
    public long Size { get; }

    /// <summary>The bytes that have arrived and wait to be read.</summary>
    internal long Buffered => _command.OutputStream.Length;

    /// <summary>Starts <paramref name="command"/> (built by <see cref="NodeCommands.ReadInSlices"/>) and reads the size it announces.</summary>
    public static async Task<PacedFileStream> OpenAsync(SshCommand command, string node, NodeStep step, string path, CancellationToken cancellationToken)
    {
        Task execution;
        Stream input;
        try
        {
            execution = command.ExecuteAsync(cancellationToken);
            input = command.CreateInputStream();
        }
        catch
        {
            command.Dispose();
            throw;
        }

        PacedFileStream? stream = null;
        try
        {
            // The first line is the size; a size has at most 19 digits.
            var reading = new CommandOutputLines(command.OutputStream, 32).NextAsync(cancellationToken);
            if (await Task.WhenAny(reading, execution) == execution && execution.IsFaulted)
            {
                await execution; // the channel never opened, or the connection went: SSH.NET's error
            }

            var line = await reading;
            if (line is null || !long.TryParse(line.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var size))
            {
                throw await FailedAsync(command, execution, node, step, path, line is null ? null : $"it printed no size ('{line}')", cancellationToken);
            }

            stream = new PacedFileStream(command, execution, input, node, step, path, size);
            await stream.AskAsync(cancellationToken);
            return stream;
        }
        catch
        {
            if (stream is not null)
            {
                await stream.DisposeAsync();
            }
            else
            {
                Close(command, execution, input);
            }

            throw;
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_received == Size)
        {
            await FinishAsync(cancellationToken);
            return 0;
        }

        if (buffer.IsEmpty)
        {
            return 0;
        }

        int read;
        // SSH.NET's output stream waits for data on a thread of its own and does not watch the token;
        // closing the channel ends that wait.
        await using (cancellationToken.Register(static c => ((SshCommand)c!).Dispose(), _command))
        {
            var wanted = (int)Math.Min(buffer.Length, Size - _received);
            read = await _command.OutputStream.ReadAsync(buffer[..wanted], cancellationToken);
        }

        if (read == 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw await FailedAsync(_command, _execution, _node, _step, _path,
                $"it ended after {_received.ToString(CultureInfo.InvariantCulture)} of {Size.ToString(CultureInfo.InvariantCulture)} bytes", cancellationToken);
        }

        _received += read;
        await AskAsync(cancellationToken);
        return read;
    }

    /// <summary>Asks for the slices that keep <see cref="SlicesAhead"/> beyond the one being read.</summary>
    private async Task AskAsync(CancellationToken cancellationToken)
    {
        var wanted = Math.Min(_slices, (_received / SliceBytes) + SlicesAhead + 1);
        if (wanted > _requested)
        {
            await _input.WriteAsync(Encoding.ASCII.GetBytes(new string('\n', (int)(wanted - _requested))), cancellationToken);
            await _input.FlushAsync(cancellationToken);
            _requested = wanted;
        }
    }

    /// <summary>Every byte has arrived: ends the command's input, and checks that it exited 0.</summary>
    private async Task FinishAsync(CancellationToken cancellationToken)
    {
        if (_finished)
        {
            return;
        }

        await _input.DisposeAsync();
        try
        {
            await _execution.WaitAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new NodeOperationException(_node, _step, $"reading {_path} failed: {ex.Message}", ex);
        }

        if (_command.ExitStatus is not 0)
        {
            throw await FailedAsync(_command, _execution, _node, _step, _path, null, cancellationToken);
        }

        _finished = true;
    }

    private static async Task<NodeOperationException> FailedAsync(
        SshCommand command, Task execution, string node, NodeStep step, string path, string? what, CancellationToken cancellationToken)
    {
        try
        {
            await execution.WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // the connection went, or the command never exited: what it printed is all there is
        }

        var error = CommandResult.LastLineOf(command.Error);
        var status = command.ExitStatus is { } code ? $"exit status {code.ToString(CultureInfo.InvariantCulture)}" : "no exit status";
        return new NodeOperationException(node, step, $"reading {path} failed on the node: {what ?? status}{(error is null ? string.Empty : ": " + error)}");
    }

    private static void Close(SshCommand command, Task execution, Stream input)
    {
        // The task ends faulted or cancelled when the channel closes under it; nobody awaits it then.
        execution.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        input.Dispose();
        command.Dispose();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close(_command, _execution, _input);
        }

        base.Dispose(disposing);
    }
}
