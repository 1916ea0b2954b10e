using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace ClusterBackup.Tests.Support;

/// <summary>What every test of this run shares, set before the first one runs.</summary>
internal static class TestEnvironment
{
    /// <summary>
    /// The manifest cache of this run (XDG_CACHE_HOME; in-process commands and the processes the tests
    /// start read it): a fresh temp directory, not the home directory of the user who runs the tests.
    /// </summary>
    public static string CacheHome { get; private set; } = string.Empty;

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "A test assembly: its environment must be set before any test starts a command.")]
    internal static void Initialize()
    {
        CacheHome = Directory.CreateTempSubdirectory("cluster-backup-cache-").FullName;
        Environment.SetEnvironmentVariable("XDG_CACHE_HOME", CacheHome);
        Environment.SetEnvironmentVariable("CACHE_DIRECTORY", null);
    }

    /// <summary>The file of a cluster's cached manifests, in this run.</summary>
    public static string ManifestCache(string cluster) => Path.Combine(CacheHome, "cluster-backup", "manifests", cluster + ".manifests");

    /// <summary>The file of a cluster's signature verdicts (signatures accepted before), in this run.</summary>
    public static string SignatureVerdicts(string cluster) => Path.Combine(CacheHome, "cluster-backup", "manifests", cluster + ".verified");
}
