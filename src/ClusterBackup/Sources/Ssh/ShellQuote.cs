namespace ClusterBackup.Sources.Ssh;

/// <summary>POSIX shell quoting for values placed in commands run on a node.</summary>
internal static class ShellQuote
{
    public static string Quote(string value) =>
        value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or ':' or '=' or ',' or '+')
            ? value
            : "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
