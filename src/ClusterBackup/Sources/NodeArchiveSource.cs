using ClusterBackup.Sources.Ssh;

namespace ClusterBackup.Sources;

/// <summary>A directory of a node as a tar stream; files keep their modes and owners.</summary>
internal static class NodeArchiveSource
{
    /// <summary>
    /// <c>tar -cf - -C {directory} .</c>. The directory is checked first: tar of a missing
    /// directory can still print a valid empty archive, which must never pass for a backup.
    /// </summary>
    public static Stream Open(NodeSession session, string directory, NodeStep step, CancellationToken cancellationToken = default) =>
        session.OpenOutput(NodeCommands.TarDirectory(directory), step, cancellationToken);

    /// <summary>The top-level <c>*.conf</c> files of the kubeconfig directory; an empty archive when it has none.</summary>
    public static Stream OpenKubeconfigs(NodeSession session, string directory, CancellationToken cancellationToken = default) =>
        session.OpenOutput(NodeCommands.TarTopLevelFiles(directory, "*.conf"), NodeStep.KubeconfigsArchive, cancellationToken);

    /// <summary>One file, by its path on the node; an empty archive when it is not there.</summary>
    public static Stream OpenFile(NodeSession session, string path, NodeStep step, CancellationToken cancellationToken = default) =>
        session.OpenOutput(NodeCommands.TarFile(Path.GetDirectoryName(path)!, Path.GetFileName(path)), step, cancellationToken);
}
