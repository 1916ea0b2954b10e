using System.Globalization;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Display;

namespace ClusterBackup.Cli;

/// <summary>Log events as readable lines on the command's error writer (stderr), apart from its output.</summary>
internal sealed class TextWriterSink(TextWriter writer) : ILogEventSink
{
    private readonly MessageTemplateTextFormatter _formatter =
        new("[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}", CultureInfo.InvariantCulture);

    public void Emit(LogEvent logEvent)
    {
        lock (_formatter)
        {
            _formatter.Format(logEvent, writer);
            writer.Flush();
        }
    }
}
