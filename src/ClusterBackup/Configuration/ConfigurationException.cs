namespace ClusterBackup.Configuration;

/// <summary>The configuration cannot be used; every problem found is listed.</summary>
internal sealed class ConfigurationException(string configSource, IReadOnlyList<string> problems)
    : Exception($"{configSource}: {string.Join("; ", problems)}")
{
    /// <summary>The file (or other source) the problems were found in.</summary>
    public string ConfigSource { get; } = configSource;

    public IReadOnlyList<string> Problems { get; } = problems;
}
