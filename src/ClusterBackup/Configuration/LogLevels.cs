using Microsoft.Extensions.Configuration;
using Serilog.Events;

namespace ClusterBackup.Configuration;

/// <summary>
/// <c>Serilog:MinimumLevel</c>: one level (<c>"Debug"</c>), or a section with <c>Default</c> and an
/// <c>Override</c> map of source prefixes to levels; Microsoft and Quartz are at Warning unless
/// overridden. Read here, not by Serilog's configuration reader, which finds its targets by
/// reflection and does not survive the published binary's trimming.
/// </summary>
internal sealed record LogLevels(LogEventLevel Default, IReadOnlyDictionary<string, LogEventLevel> Overrides)
{
    public const string SectionName = "Serilog:MinimumLevel";

    public static LogLevels Read(IConfiguration configuration, List<string> problems)
    {
        var section = configuration.GetSection(SectionName);
        var overrides = new Dictionary<string, LogEventLevel>(StringComparer.Ordinal) { ["Microsoft"] = LogEventLevel.Warning, ["Quartz"] = LogEventLevel.Warning };
        foreach (var source in section.GetSection("Override").GetChildren())
        {
            if (Level(source, problems) is { } level)
            {
                overrides[source.Key] = level;
            }
        }

        return new LogLevels(Level(section, problems) ?? Level(section.GetSection("Default"), problems) ?? LogEventLevel.Information, overrides);
    }

    private static LogEventLevel? Level(IConfigurationSection key, List<string> problems)
    {
        if (key.Value is null)
        {
            return null;
        }

        var names = Enum.GetNames<LogEventLevel>();
        if (names.FirstOrDefault(name => name.Equals(key.Value, StringComparison.OrdinalIgnoreCase)) is { } known)
        {
            return Enum.Parse<LogEventLevel>(known);
        }

        problems.Add($"{key.Path}: {Redaction.Quote(key.Value)} is not a level ({string.Join(", ", names)})");
        return null;
    }
}
