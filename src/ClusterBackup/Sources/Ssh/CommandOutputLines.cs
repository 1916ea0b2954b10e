using System.Text;

namespace ClusterBackup.Sources.Ssh;

/// <summary>
/// A node command's output, read a line at a time. It reads a byte per call, so nothing past the
/// line leaves the stream: what follows may be a file's bytes, read by someone else.
/// </summary>
internal sealed class CommandOutputLines(Stream output, int maxLength)
{
    private readonly byte[] _one = new byte[1];

    /// <summary>
    /// The next line, without its newline. Null when the output ends before a newline. A line longer
    /// than <c>maxLength</c> bytes comes back as its first <c>maxLength</c> bytes, the rest unread,
    /// for the caller's own check to refuse (a size must parse; the guard's dir must be one of ours).
    /// </summary>
    public async Task<string?> NextAsync(CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        while (line.Count < maxLength && await output.ReadAsync(_one, cancellationToken) == 1)
        {
            if (_one[0] == (byte)'\n')
            {
                return Encoding.UTF8.GetString([.. line]);
            }

            line.Add(_one[0]);
        }

        return line.Count == maxLength ? Encoding.UTF8.GetString([.. line]) : null;
    }
}
