namespace ClusterBackup.Sources;

/// <summary>
/// What the agent reads from a control plane's static-pod manifests (<c>etcd.yaml</c>,
/// <c>kube-apiserver.yaml</c>): the <c>- --flag=value</c> items of the container's command. Pure.
/// </summary>
internal static class StaticPodManifest
{
    public const string ApiServer = "kube-apiserver.yaml";

    /// <summary>The flag that names kube-apiserver's EncryptionConfiguration: the keys Secrets are encrypted with in etcd.</summary>
    public const string EncryptionProviderConfig = "encryption-provider-config";

    /// <summary>Every <c>--flag=value</c> item (quoted or not); the last one wins, as for the program.</summary>
    public static IReadOnlyDictionary<string, string> Flags(string manifest) =>
        manifest.Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.StartsWith("- ", StringComparison.Ordinal))
            .Select(l => l[2..].Trim().Trim('"', '\'')) // a YAML item may be quoted
            .Where(l => l.StartsWith("--", StringComparison.Ordinal) && l.Contains('=', StringComparison.Ordinal))
            .Select(l => l[2..])
            .GroupBy(l => l[..l.IndexOf('=', StringComparison.Ordinal)])
            .ToDictionary(g => g.Key, g => g.Last()[(g.Key.Length + 1)..], StringComparer.Ordinal);

    /// <summary>
    /// The absolute path kube-apiserver reads its EncryptionConfiguration from, or null when it
    /// encrypts nothing (or names a relative path, which the agent cannot place on the node).
    /// </summary>
    public static string? EncryptionConfig(string apiServerManifest) =>
        Flags(apiServerManifest).TryGetValue(EncryptionProviderConfig, out var path) && path.StartsWith('/') && Path.GetFileName(path).Length > 0 ? path : null;

    /// <summary>Whether a path on the node lies within a directory (as the PKI archive holds it).</summary>
    public static bool IsWithin(string path, string directory)
    {
        var dir = directory.TrimEnd('/');
        return path.StartsWith(dir + "/", StringComparison.Ordinal);
    }
}
