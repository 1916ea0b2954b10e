namespace ClusterBackup.Cli;

/// <summary>The exit codes scripts and systemd rely on (DESIGN.md).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;

    /// <summary>EX_CONFIG: systemd's RestartPreventExitStatus keeps it from restart-looping.</summary>
    public const int Config = 78;
}

/// <summary>A mistake in the command line that parsing cannot catch (an unknown cluster name).</summary>
internal sealed class UsageException(string message) : Exception(message);
