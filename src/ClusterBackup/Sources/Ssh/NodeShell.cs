using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Renci.SshNet;

namespace ClusterBackup.Sources.Ssh;

/// <summary>
/// One shell on a node that runs short commands one after another, each by its own <c>sh -c</c>, over a
/// single exec channel. Every exec channel costs a start of the SSH user's login shell, which sources
/// its rc files (bash does so for sshd's commands), and with <c>Ssh.Sudo</c> a sudo session: a
/// restore's steps paid that once each. The shell starts on first use, and again after a command
/// that did not complete (a cancellation, a broken channel, the shell gone), so no command ever reads
/// what an abandoned one left behind.
/// </summary>
internal sealed class NodeShell(SshClient client, string shellCommand) : IDisposable
{
    private readonly SemaphoreSlim _turn = new(1, 1);
    private Running? _running;
    private bool _disposed;

    /// <summary>Runs <paramref name="command"/> with the output, error and exit status an exec channel of its own would give.</summary>
    public async Task<CommandResult> RunAsync(string command, CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_running is null)
            {
                var started = Running.Start(client, shellCommand);
                // Whatever the login shell's rc files print comes before this first mark, and is dropped.
                var (ready, failure) = await AttemptAsync(started, ":", cancellationToken);
                if (!ready)
                {
                    return failure; // the shell did not start (sudo refused, no sh): its exit status and error
                }

                _running = started;
            }

            var (completed, result) = await AttemptAsync(_running, command, cancellationToken);
            if (!completed)
            {
                _running = null;
            }

            return result;
        }
        catch
        {
            _running = null; // AttemptAsync closed it
            throw;
        }
        finally
        {
            _turn.Release();
        }
    }

    /// <summary>Runs one command; a shell that did not see it through is closed.</summary>
    private static async Task<(bool Completed, CommandResult Result)> AttemptAsync(Running running, string command, CancellationToken cancellationToken)
    {
        try
        {
            var attempt = await running.RunAsync(command, cancellationToken);
            if (!attempt.Completed)
            {
                running.Dispose();
            }

            return attempt;
        }
        catch
        {
            running.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _running?.Dispose();
        _running = null;
    }

    /// <summary>The shell's exec channel: commands go in on standard input, framed by a mark only this shell knows.</summary>
    private sealed class Running(SshCommand shell, Task execution, Stream input, string mark) : IDisposable
    {
        private readonly MarkedReader _output = new(shell.OutputStream);
        private readonly MarkedReader _error = new(shell.ExtendedOutputStream);

        public static Running Start(SshClient client, string shellCommand)
        {
            var shell = client.CreateCommand(shellCommand);
            try
            {
                var execution = shell.ExecuteAsync();
                return new Running(shell, execution, OpenInput(shell), "cluster-backup-" + Guid.NewGuid().ToString("N"));
            }
            catch
            {
                shell.Dispose();
                throw;
            }
        }

        /// <summary>
        /// The shell's standard input. A shell that ended at once (sudo refused, no sh) may have closed
        /// its channel already, and SSH.NET then opens none: it takes no input, and its first command
        /// fails with the shell's own exit status and error.
        /// </summary>
        private static Stream OpenInput(SshCommand shell)
        {
            try
            {
                return shell.CreateInputStream();
            }
            catch (InvalidOperationException)
            {
                return Stream.Null;
            }
        }

        /// <summary>The command's result; not completed if the shell ended first (then its own exit status and error).</summary>
        public async Task<(bool Completed, CommandResult Result)> RunAsync(string command, CancellationToken cancellationToken)
        {
            await input.WriteAsync(Encoding.UTF8.GetBytes(NodeCommands.InShell(command, mark)), cancellationToken);
            await input.FlushAsync(cancellationToken);
            var output = ReadOutputAsync(cancellationToken);
            var error = _error.ReadUntilAsync("\n" + mark + "\n", cancellationToken);
            await Task.WhenAll(output, error).WaitAsync(cancellationToken);
            var (text, status) = await output;
            var (errorText, errorMarked) = await error;
            if (status is { } code && errorMarked)
            {
                return (true, new CommandResult(code, text, errorText));
            }

            // The shell ended first. A lost connection fails as an exec channel's command would; otherwise
            // the result is a failure, even if the shell exited 0 (an rc file's exit): the command never ran to its end.
            await Task.WhenAny(execution, Task.Delay(TimeSpan.FromSeconds(5), cancellationToken));
            if (execution.IsFaulted)
            {
                await execution;
            }

            var ended = errorText.Length > 0 ? errorText : "the node's shell ended before the command finished\n";
            return (false, new CommandResult(shell.ExitStatus is { } exit and not 0 ? exit : -1, text, ended));
        }

        /// <summary>Standard output up to the mark, then the exit status on the rest of the mark's line.</summary>
        private async Task<(string Text, int? Status)> ReadOutputAsync(CancellationToken cancellationToken)
        {
            var (text, marked) = await _output.ReadUntilAsync("\n" + mark + " ", cancellationToken);
            if (!marked)
            {
                return (text, null);
            }

            var (status, ended) = await _output.ReadUntilAsync("\n", cancellationToken);
            return ended && int.TryParse(status, NumberStyles.None, CultureInfo.InvariantCulture, out var code)
                ? (text, code)
                : throw new IOException($"the node's shell printed no exit status after its mark ('{status}')");
        }

        public void Dispose()
        {
            // The task ends faulted or cancelled when the channel closes under it; nobody awaits it then.
            execution.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
            try
            {
                input.Dispose(); // sends EOF to the shell
            }
            catch (Exception ex) when (ex is Renci.SshNet.Common.SshException or ObjectDisposedException or IOException)
            {
                // The connection is gone, and the shell with it.
            }

            shell.Dispose();
        }
    }

    /// <summary>Reads one of the shell's streams up to a mark; what comes after it stays for the next read.</summary>
    private sealed class MarkedReader(Stream stream)
    {
        private readonly List<byte> _pending = [];
        private readonly byte[] _buffer = new byte[16 * 1024];

        /// <summary>The text before the mark, and true; or, if the stream ended first, all it held, and false.</summary>
        public async Task<(string Text, bool Marked)> ReadUntilAsync(string mark, CancellationToken cancellationToken)
        {
            var wanted = Encoding.UTF8.GetBytes(mark);
            while (true)
            {
                var at = CollectionsMarshal.AsSpan(_pending).IndexOf(wanted);
                if (at >= 0)
                {
                    var text = Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(_pending)[..at]);
                    _pending.RemoveRange(0, at + wanted.Length);
                    return (text, true);
                }

                var read = await stream.ReadAsync(_buffer, cancellationToken);
                if (read == 0)
                {
                    var rest = Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(_pending));
                    _pending.Clear();
                    return (rest, false);
                }

                _pending.AddRange(_buffer.AsSpan(0, read));
            }
        }
    }
}
