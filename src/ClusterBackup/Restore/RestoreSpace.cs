using ClusterBackup.Configuration;
using ClusterBackup.Sources;

namespace ClusterBackup.Restore;

/// <summary>
/// Whether a member's filesystems hold what its restore writes, decided before anything is changed:
/// a node whose disk fills mid-restore stops with its etcd down until the steps are undone, and a
/// full disk is a common reason to restore at all. Pure: the assessment measures the paths
/// <see cref="PathsToMeasure"/> names, and <see cref="Shortfall"/> compares.
/// </summary>
internal static class RestoreSpace
{
    /// <summary>
    /// What <c>etcdctl snapshot restore</c> writes besides the snapshot's own bytes: the first WAL
    /// segment, which etcd preallocates at 64 MB (counted here as 64 MiB, a little more).
    /// </summary>
    public const long WalSegment = 64L * 1024 * 1024;

    /// <summary>The node paths whose filesystems a restore writes to (the data dir's own, in case it is a mount point).</summary>
    public static IReadOnlyList<string> PathsToMeasure(ControlPlaneSettings node)
    {
        var paths = new List<string> { Staging(node), Parent(node.Paths.EtcdData), Trim(node.Paths.EtcdData), Parent(node.Paths.Pki) };
        if (node.Ssh.Sudo)
        {
            paths.Add(NodeCommands.TempDirectory);
        }

        return paths.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Why the member's filesystems cannot hold the restore (each one short, with what it must hold),
    /// or null when they can. At its peak a filesystem holds the files staged on it, and then either
    /// an upload on its way to another one (through the private upload dir, with Ssh.Sudo) or the
    /// restored data dir and the PKI copied aside; what killed restores left (the member's
    /// <see cref="MemberAssessment.LeftoverBytes"/>) is removed before the restored data dir is written.
    /// </summary>
    public static string? Shortfall(ControlPlaneSettings node, MemberAssessment member, long snapshot, long pki, long kubeconfigs)
    {
        if (member.Space is not { } space)
        {
            return null;
        }

        FreeSpace? On(string path) => space.GetValueOrDefault(path);
        var inside = member.DataDirIsMountPoint;
        var staging = On(Staging(node));
        var data = On(inside ? Trim(node.Paths.EtcdData) : Parent(node.Paths.EtcdData));
        var pkiParent = On(Parent(node.Paths.Pki));
        var uploads = node.Ssh.Sudo ? On(NodeCommands.TempDirectory) : null;
        if (staging is null || data is null || pkiParent is null || (node.Ssh.Sudo && uploads is null))
        {
            return null;
        }

        // The kubeconfigs the restore replaces are copied aside into the staging dir too.
        var needs = new Dictionary<string, Need>(StringComparer.Ordinal);
        Need At(FreeSpace fs) => needs.TryGetValue(fs.MountPoint, out var need) ? need : needs[fs.MountPoint] = new Need(fs.AvailableBytes);
        At(staging).Stage(snapshot + pki + (2 * kubeconfigs), $"the snapshot and archives staged in {Staging(node)}");
        At(data).WriteLater(snapshot + WalSegment, $"the restored data dir {(inside ? "in" : "beside")} {Trim(node.Paths.EtcdData)}");
        if (member.LeftoverBytes > 0)
        {
            At(data).FreeFirst(member.LeftoverBytes, $"less what killed restores left as {RestoredPrefix(node, inside)}*, removed first");
        }

        if (pki > 0)
        {
            At(pkiParent).WriteLater(pki, $"the PKI copied aside beside {Trim(node.Paths.Pki)}");
        }

        if (uploads is not null && uploads.MountPoint != staging.MountPoint)
        {
            At(uploads).PassThrough(snapshot, $"each upload on its way, in {NodeCommands.TempDirectory}");
        }

        var shortfalls = needs.Where(n => n.Value.Short).Select(n =>
            $"{n.Key} has {FreeSpace.MiB(n.Value.Available)} free, and the restore needs {FreeSpace.MiB(n.Value.Peak)} there ({string.Join(", ", n.Value.What)})").ToList();
        if (shortfalls.Count == 0)
        {
            return null;
        }

        var advice = needs.Where(n => n.Value.Short).Any(n => n.Key == staging.MountPoint)
            ? "; free space there, or set Paths.Staging to a filesystem with room"
            : "; free space there";
        return $"node {node.Name}: not enough free space: {string.Join("; ", shortfalls)}{advice}";
    }

    /// <summary>
    /// Where etcdctl restores, but for the stamp: beside the data dir, or inside it when the data dir
    /// is a mount point (it cannot be renamed, and beside it is another filesystem).
    /// </summary>
    public static string RestoredPrefix(ControlPlaneSettings node, bool insideDataDir) =>
        insideDataDir ? $"{Trim(node.Paths.EtcdData)}/.restored-" : $"{Trim(node.Paths.EtcdData)}.restored-";

    private static string Staging(ControlPlaneSettings node) => Trim(node.Paths.Staging);

    private static string Trim(string path) => path.TrimEnd('/') is { Length: > 0 } trimmed ? trimmed : "/";

    private static string Parent(string path) => Path.GetDirectoryName(Trim(path)) is { Length: > 0 } parent ? parent : "/";

    /// <summary>
    /// What one filesystem must hold: staged files stay while either an upload passes through or,
    /// once what is freed first is gone, the later files are written.
    /// </summary>
    private sealed class Need(long available)
    {
        private long _staged;
        private long _passing;
        private long _later;
        private long _freed;

        public long Available { get; } = available;

        public List<string> What { get; } = [];

        /// <summary>The most it holds at once beyond what it holds now.</summary>
        public long Peak => _staged + Math.Max(_passing, _later - _freed);

        public bool Short => Peak > Available;

        public void FreeFirst(long bytes, string what)
        {
            _freed += bytes;
            What.Add($"{what}: {FreeSpace.MiB(bytes)}");
        }

        public void Stage(long bytes, string what) => Add(ref _staged, bytes, what);

        public void PassThrough(long bytes, string what) => Add(ref _passing, bytes, what);

        public void WriteLater(long bytes, string what) => Add(ref _later, bytes, what);

        private void Add(ref long bucket, long bytes, string what)
        {
            bucket += bytes;
            What.Add($"{what}: {FreeSpace.MiB(bytes)}");
        }
    }
}
