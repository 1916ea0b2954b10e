namespace ClusterBackup.Sources.Etcd;

/// <summary>
/// Whether exec mode may save the snapshot on the node, and compress it there. Its file is etcd's database (the size
/// etcd's status reports), and saving it must leave a tenth of the filesystem free: the kubelet's
/// default hard eviction threshold (<c>nodefs.available&lt;10%</c>). A backup must never put a
/// control plane under disk pressure, nor fill a disk etcd itself may be writing to.
/// </summary>
internal static class SnapshotRoom
{
    public const int KeptFreePercent = 10;

    /// <summary>
    /// Whether the node may also keep a zstd copy of the saved snapshot: room for the database twice
    /// (the copy of data that does not compress is as large), the tenth still kept free.
    /// </summary>
    public static bool HasRoomForCompressedCopy(FreeSpace space, long databaseBytes) =>
        Leaves(space, 2 * databaseBytes);

    /// <summary>Why the snapshot may not be saved in <paramref name="directory"/>, on the filesystem <paramref name="space"/> describes; null when it may.</summary>
    public static string? Problem(FreeSpace space, long databaseBytes, string directory)
    {
        if (Leaves(space, databaseBytes))
        {
            return null;
        }

        var left = space.AvailableBytes - databaseBytes;
        var outcome = left < 0
            ? "does not fit"
            : $"would leave {FreeSpace.MiB(left)}, under the {KeptFreePercent}% of it that the kubelet keeps free (nodefs.available)";
        return $"not enough free space to save the snapshot in {directory}: {space.MountPoint} has {FreeSpace.MiB(space.AvailableBytes)} free of {FreeSpace.MiB(space.TotalBytes)}, " +
               $"and the snapshot (etcd's database, {FreeSpace.MiB(databaseBytes)}) {outcome}; nothing was written on the node. " +
               "Free space there, or set Etcd.Mode to tunnel, which writes nothing on the node";
    }

    /// <summary>Whether writing <paramref name="bytes"/> leaves the tenth the kubelet keeps free.</summary>
    private static bool Leaves(FreeSpace space, long bytes) =>
        space.AvailableBytes - bytes >= space.TotalBytes / 100 * KeptFreePercent;
}
