namespace ClusterBackup.Certificates;

/// <summary>
/// What a node's PKI archive must hold to rebuild a kubeadm control plane: pure, from the names of
/// the archive's entries. Without the CAs and their keys, and the service-account key pair, a
/// restore cannot bring back a control plane that was lost whole.
/// </summary>
internal static class PkiInventory
{
    /// <summary>The file every kubeadm PKI dir holds at its top: without it, Paths.Pki names another dir.</summary>
    public const string ClusterCa = "ca.crt";

    /// <summary>The CAs, their keys and the service-account key pair, as kubeadm writes them.</summary>
    public static readonly IReadOnlyList<string> Essential =
        [ClusterCa, "ca.key", "etcd/ca.crt", "etcd/ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub"];

    /// <summary>
    /// Why the archive of <paramref name="directory"/> is not a kubeadm PKI dir's (an empty dir, or
    /// Paths.Pki pointing elsewhere), or null when it holds the cluster CA's certificate at its top.
    /// </summary>
    public static string? NotAPki(IReadOnlySet<string> entries, string directory) =>
        entries.Contains(ClusterCa) ? null : NotAPki(directory, empty: entries.All(e => e.Length == 0));

    /// <summary>Why <paramref name="directory"/>, which holds no <see cref="ClusterCa"/> at its top, is not a kubeadm PKI dir.</summary>
    public static string NotAPki(string directory, bool empty) =>
        $"{directory} {(empty ? "is empty" : $"holds no {ClusterCa} at its top")}: it is not a kubeadm PKI dir; set Paths.Pki to the dir with the cluster's CAs";

    /// <summary>The essential files the archive lacks (kubeadm's external-CA mode keeps the CA keys elsewhere, on purpose).</summary>
    public static IReadOnlyList<string> Missing(IReadOnlySet<string> entries) => Essential.Where(f => !entries.Contains(f)).ToList();
}
