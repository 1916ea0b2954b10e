using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace ClusterBackup.Rig;

/// <summary>A server started for a test: output kept in a log file, the whole tree killed on dispose.</summary>
public sealed class ExternalProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private int _disposed;
    private bool _stopped;

    private ExternalProcess(string name, Process process, string logPath, StreamWriter log)
    {
        Name = name;
        _process = process;
        LogPath = logPath;
        _log = log;
    }

    public string Name { get; }

    public string LogPath { get; }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    public static ExternalProcess Start(string name, string fileName, IEnumerable<string> arguments, string logDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        Directory.CreateDirectory(logDirectory);
        var logPath = Path.Combine(logDirectory, $"{name}.log");
        var log = new StreamWriter(logPath, append: true, Encoding.UTF8) { AutoFlush = true };
        log.WriteLine($"$ {fileName} {string.Join(' ', info.ArgumentList)}");
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ExternalProcess(name, process, logPath, log);
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.WriteLine(line);
        }
    }

    /// <summary>Everything the process printed so far.</summary>
    public string ReadLog()
    {
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>The last lines of the log, for a failing test's message.</summary>
    public string Tail(int lines = 40)
    {
        try
        {
            return $"--- {Name} log ({LogPath}) ---\n" + string.Join('\n', ReadLog().Split('\n').TakeLast(lines));
        }
        catch (IOException ex)
        {
            return $"--- {Name} log unreadable: {ex.Message}";
        }
    }

    /// <summary>Sends SIGTERM, as systemd stops a unit, and returns the exit code.</summary>
    public Task<int> TerminateAsync(TimeSpan timeout) => SignalAsync("TERM", timeout);

    /// <summary>Sends SIGINT, as Ctrl-C in a terminal does, and returns the exit code.</summary>
    public Task<int> InterruptAsync(TimeSpan timeout) => SignalAsync("INT", timeout);

    private async Task<int> SignalAsync(string signal, TimeSpan timeout)
    {
        await Tools.CheckAsync("kill", "-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var wait = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(wait.Token);
        return _process.ExitCode;
    }

    /// <summary>Waits for the process to exit by itself and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var wait = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(wait.Token);
        return _process.ExitCode;
    }

    /// <summary>Waits until something accepts TCP connections on the port, or fails with the log.</summary>
    public async Task WaitForPortAsync(int port, TimeSpan? timeout = null)
    {
        await WaitUntilAsync(async () =>
        {
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync("127.0.0.1", port);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }, $"port {port}", timeout);
    }

    public async Task WaitUntilAsync(Func<Task<bool>> ready, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with {_process.ExitCode} before {what} was ready\n{Tail()}");
            }

            if (await ready())
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"{Name}: {what} not ready in time\n{Tail()}");
    }

    public async Task StopAsync()
    {
        if (Volatile.Read(ref _disposed) == 1 && _stopped)
        {
            return;
        }

        _stopped = true;
        if (!_process.HasExited)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // exited meanwhile
            }

            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await _process.WaitForExitAsync(wait.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await StopAsync();
        _process.Dispose();
        lock (_log)
        {
            _log.Dispose();
        }
    }
}
