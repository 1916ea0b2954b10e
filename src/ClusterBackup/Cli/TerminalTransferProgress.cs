using ClusterBackup.Pipeline;

namespace ClusterBackup.Cli;

/// <summary>One self-overwriting line on a terminal, at most a few times a second.</summary>
internal sealed class TerminalTransferProgress(TextWriter terminal, TimeProvider time) : ITransferProgress
{
    private long _lastShown;

    public void Report(string artifact, long bytes)
    {
        var now = time.GetTimestamp();
        if (time.GetElapsedTime(_lastShown, now) < TimeSpan.FromMilliseconds(250))
        {
            return;
        }

        _lastShown = now;
        terminal.Write($"\r\u001b[K{artifact}: {Formatting.Bytes(bytes)}");
        terminal.Flush();
    }

    public void Complete(string artifact)
    {
        terminal.Write("\r\u001b[K");
        terminal.Flush();
    }
}
