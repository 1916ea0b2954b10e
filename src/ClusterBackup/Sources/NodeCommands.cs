using System.Globalization;
using System.Text.RegularExpressions;
using ClusterBackup.Configuration;
using ClusterBackup.Sources.Etcd;
using ClusterBackup.Sources.Ssh;

namespace ClusterBackup.Sources;

/// <summary>
/// Every shell command the agent runs on a node, built here and only here: each value is quoted
/// for the node's POSIX shell, and the configured etcdctl runner (<c>Etcd.Etcdctl</c> or
/// <c>Restore.Etcdctl</c>, which may be a command with arguments of its own, such as
/// <c>crictl exec … etcdctl</c>) is put in front unquoted, as the operator wrote it.
/// </summary>
internal static class NodeCommands
{
    /// <summary>Where the agent's private directories on a node live; every one starts with this.</summary>
    public const string TempPrefix = "/var/tmp/cluster-backup.";

    /// <summary>The line <see cref="GuardedSnapshot"/> prints once the snapshot file is complete.</summary>
    public const string SnapshotSaved = "saved";

    /// <summary>The line <see cref="GuardedSnapshot"/> prints instead once the node compressed the complete file.</summary>
    public const string SnapshotCompressed = "saved zstd";

    /// <summary>The snapshot's file in the guard's dir, and its zstd copy.</summary>
    public const string SnapshotFile = "snapshot.db";

    public const string CompressedSnapshotFile = "snapshot.db.zst";

    /// <summary>The node's cores zstd may use to compress the snapshot, at a lower priority than etcd's.</summary>
    public const int NodeZstdThreads = 2;

    /// <summary>The command as it runs on the node: through <c>sudo -n</c> when <c>Ssh.Sudo</c> is set.</summary>
    public static string AsRunOn(ControlPlaneSettings node, string command) =>
        node.Ssh.Sudo ? $"sudo -n sh -c {Q(command)}" : command;

    /// <summary>etcdctl against the node's own member over TLS, with the kubeadm client certificate.</summary>
    public static string Etcdctl(string runner, ControlPlaneSettings node, params string[] arguments) =>
        EtcdctlAt(runner, node.Paths, $"https://127.0.0.1:{node.Etcd.ClientPort.ToString(CultureInfo.InvariantCulture)}", arguments);

    /// <summary>etcdctl against the given endpoints (comma-separated URLs) over TLS.</summary>
    public static string EtcdctlAt(string runner, PathOptions paths, string endpoints, params string[] arguments) =>
        $"ETCDCTL_API=3 {runner} {EtcdClientFiles.For(paths).EtcdctlFlags} --endpoints={Q(endpoints)}{Arguments(arguments)}";

    /// <summary>etcdctl without a server (<c>snapshot restore</c>).</summary>
    public static string EtcdctlOffline(string runner, params string[] arguments) => $"ETCDCTL_API=3 {runner}{Arguments(arguments)}";

    public static string ReadFile(string path) => $"cat {Q(path)}";

    /// <summary>
    /// A file sent at its reader's pace, for <see cref="Ssh.PacedFileStream"/>: first its size in
    /// bytes on a line, then, for every line read on standard input, its next slice of
    /// <paramref name="sliceMiB"/> MiB (the last one shorter); it exits 0 when standard input ends.
    /// Each slice is one <c>dd</c>, whose start is most of the loop's cost: with a 64 KiB buffer
    /// rather than 1 MiB it starts faster (README, Performance).
    /// </summary>
    public static string ReadInSlices(string path, int sliceMiB)
    {
        var file = Q(path);
        var blocks = (sliceMiB * 16).ToString(CultureInfo.InvariantCulture);
        return $"wc -c < {file} || exit 1; n=0; while read -r _; do dd if={file} bs=65536 skip=$n count={blocks} status=none || exit 1; n=$((n + {blocks})); done";
    }

    /// <summary>The first of the files that can be read.</summary>
    public static string ReadFirstOf(string path, string fallback) => $"cat {Q(path)} 2>/dev/null || cat {Q(fallback)}";

    public static string RemoveTree(string path) => $"rm -rf {Q(path)}";

    public static string RemoveFiles(params string[] paths) => $"rm -f {string.Join(' ', paths.Select(Q))}";

    public static string MakePrivateDirectory(string path) => $"mkdir -p -m 700 {Q(path)}";

    public static string TestDirectory(string path) => $"test -d {Q(path)}";

    /// <summary>
    /// <c>tar -cf - -C {directory} .</c>. The directory is checked first: tar of a missing directory
    /// can still print a valid empty archive, which must never pass for a backup.
    /// </summary>
    public static string TarDirectory(string directory)
    {
        var dir = Q(directory);
        return $"test -d {dir} || {{ printf '%s: no such directory\\n' {dir} >&2; exit 2; }}; tar -cf - -C {dir} .";
    }

    /// <summary>
    /// <c>tar -cf -</c> of the regular files matching <paramref name="pattern"/> at the top of a
    /// directory (not below it), keeping modes and owners; an empty archive when there are none or
    /// the directory does not exist (a node without kubeconfigs is recorded as such, not an error).
    /// </summary>
    public static string TarTopLevelFiles(string directory, string pattern)
    {
        var dir = Q(directory);
        return $"if [ -d {dir} ]; then cd {dir} && find . -maxdepth 1 -type f -name {Q(pattern)} -print0 | sort -z | tar -cf - --null --no-recursion -T -; " +
               "else tar -cf - --null -T /dev/null; fi";
    }

    /// <summary>
    /// What a PKI dir is, in one word: <c>missing</c>, <c>empty</c>, <c>ok</c> (it holds
    /// <paramref name="caFile"/> at its top) or <c>other</c>. Read before the snapshot, so that a
    /// wrong Paths.Pki costs no upload.
    /// </summary>
    public static string PkiDirectoryState(string directory, string caFile)
    {
        var dir = Q(directory);
        return $"if [ ! -d {dir} ]; then echo missing; elif [ -e {dir}/{Q(caFile)} ]; then echo ok; elif [ -z \"$(ls -A {dir})\" ]; then echo empty; else echo other; fi";
    }

    /// <summary>
    /// <c>tar -cf -</c> of one regular file of a directory, by its name, keeping its mode and owner; an
    /// empty archive when it is not there (the caller says so: it is no reason to lose the set). A
    /// symbolic link is followed (<c>-h</c>): what is kept is the content the program reads.
    /// </summary>
    public static string TarFile(string directory, string name)
    {
        var (dir, file) = (Q(directory), Q(name));
        return $"if [ -f {dir}/{file} ]; then tar -chf - -C {dir} -- {file}; else tar -cf - --null -T /dev/null; fi";
    }

    /// <summary>Extracts an archive into a directory, keeping modes and owners.</summary>
    public static string Untar(string archive, string directory) => $"mkdir -p {Q(directory)} && tar -xpf {Q(archive)} -C {Q(directory)}";

    /// <summary>Moves the etcd and apiserver static pod manifests that exist from one directory to another.</summary>
    public static string MoveStaticPodManifests(string from, string to) =>
        $"for f in etcd.yaml kube-apiserver.yaml; do if [ -e {Q(from)}/$f ]; then mv {Q(from)}/$f {Q(to)}/$f || exit 1; fi; done";

    /// <summary>
    /// Polls /proc until etcd has stopped: nothing listens on its client port (/proc/net/tcp{,6}),
    /// and no process runs with its data dir. A crash-looping member never listens, and the etcd
    /// the kubelet started just before its manifest moved may still be starting: moved aside under
    /// it, the data dir would be made again, and <c>etcdctl snapshot restore</c> refuses a data dir
    /// that exists.
    /// </summary>
    public static string WaitUntilEtcdStopped(int port, string dataDir) =>
        WaitUntil($"! {Listening(port)} && ! {RunsWithDataDir(dataDir)}",
            $"etcd still runs after 60s (port {port.ToString(CultureInfo.InvariantCulture)}, or a process with --data-dir={dataDir})", seconds: 60);

    /// <summary>
    /// True (exit 0) while a process has <c>--data-dir=DIR</c> (or <c>DIR/</c>) among its arguments,
    /// from /proc/*/cmdline. The pattern starts with <c>[-]</c>, so that grep never finds its own.
    /// </summary>
    private static string RunsWithDataDir(string dataDir) =>
        $"grep -qszx -- {Q("[-]-data-dir=" + Regex.Replace(dataDir.TrimEnd('/'), @"[\\.\[\]*^$]", @"\$0") + "/*")} /proc/[0-9]*/cmdline";

    /// <summary>
    /// Runs <paramref name="command"/> only when something listens on the port; otherwise fails at
    /// once saying so (etcdctl against a dead member would first wait out its dial timeout).
    /// </summary>
    public static string IfListening(int port, string command) =>
        $"if {Listening(port)}; then {command}; else echo 'nothing listens on 127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}' >&2; exit 1; fi";

    /// <summary>True (exit 0) while a socket listens on the port, read from /proc/net/tcp{,6}.</summary>
    private static string Listening(int port) =>
        $"grep -Eq ':{port.ToString("X4", CultureInfo.InvariantCulture)} [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null";

    /// <summary>
    /// Retries a check every half second until it passes or <paramref name="seconds"/> have gone
    /// by, however long each try takes: a check that fails at once, as one behind
    /// <see cref="IfListening"/> does, costs no more than the interval after it passes. The check
    /// runs in a subshell, so that its own <c>exit</c> ends only that try.
    /// </summary>
    public static string WaitUntil(string check, string failure, int seconds = 120) =>
        $"end=$(($(date +%s) + {seconds.ToString(CultureInfo.InvariantCulture)})); until ({check}) >/dev/null 2>&1; do if [ \"$(date +%s)\" -ge \"$end\" ]; then echo {Q(failure)} >&2; exit 1; fi; sleep 0.5; done";

    /// <summary>The shell <see cref="Ssh.NodeShell"/> keeps open: a POSIX sh reading commands on its standard input.</summary>
    public const string Shell = "exec sh";

    /// <summary>
    /// One command as <see cref="Ssh.NodeShell"/> sends it: run by <c>sh -c</c> (its <c>exit</c>,
    /// variables and directory stay in that process, and its errors read as they would over an exec
    /// channel of its own), its standard input from /dev/null (it cannot read the commands that
    /// follow); then the mark on both streams, on standard output with the command's exit status.
    /// </summary>
    public static string InShell(string command, string mark) =>
        $"sh -c {Q(command)} </dev/null\nprintf '\\n%s %d\\n' {Q(mark)} \"$?\"\nprintf '\\n%s\\n' {Q(mark)} >&2\n";

    /// <summary>Moves a directory aside if it exists.</summary>
    public static string MoveAsideIfPresent(string path, string aside) => $"if [ -e {Q(path)} ]; then mv {Q(path)} {Q(aside)}; fi";

    /// <summary>Removes every <c>{prefix}*</c>: what restores killed before their end left (<c>{dataDir}.restored-*</c>, or inside a data dir that is a mount point).</summary>
    public static string RemoveLeftoverRestores(string prefix) => $"rm -rf {Q(prefix)}*";

    /// <summary>The KiB that <see cref="RemoveLeftoverRestores"/> would free, on a line (0 when there is nothing).</summary>
    public static string LeftoverRestoresKiB(string prefix) => $"du -sck -- {Q(prefix)}* 2>/dev/null | tail -n 1 | cut -f 1";

    /// <summary>
    /// True (exit 0) when the directory is a mount point (a volume of its own, which cannot be
    /// renamed): <c>mountpoint</c>, or where it is missing, a device other than its parent's.
    /// </summary>
    public static string IsMountPoint(string path) =>
        $"mountpoint -q {Q(path)} 2>/dev/null || {{ [ -d {Q(path)} ] && [ \"$(stat -c %d {Q(path)})\" != \"$(stat -c %d {Q(path + "/..")})\" ]; }}";

    /// <summary>
    /// Renames <paramref name="from"/> to <paramref name="path"/>, which must not exist: refused (naming
    /// it) when something made it since, instead of moving <paramref name="from"/> into it. Then
    /// removes <paramref name="thenEmpty"/>, the dir <paramref name="from"/> was in, when given.
    /// </summary>
    public static string MoveIntoPlace(string from, string path, string? thenEmpty = null) =>
        $"if [ -e {Q(path)} ]; then echo {Q(path + " exists again: something made it after etcd stopped")} >&2; exit 1; fi; mv {Q(from)} {Q(path)}" +
        (thenEmpty is null ? string.Empty : $" && rmdir {Q(thenEmpty)}");

    /// <summary>Copies a directory aside, keeping modes and owners, if it exists.</summary>
    public static string CopyAsideIfPresent(string path, string aside) => $"if [ -e {Q(path)} ]; then cp -a {Q(path)} {Q(aside)}; fi";

    /// <summary>Copies the named files of a directory that exist into a new directory aside, keeping modes and owners.</summary>
    public static string CopyFilesAside(string directory, IEnumerable<string> files, string aside) =>
        $"mkdir -p {Q(aside)} && for f in {string.Join(' ', files.Select(Q))}; do if [ -e {Q(directory)}/\"$f\" ]; then cp -a {Q(directory)}/\"$f\" {Q(aside)}/ || exit 1; fi; done";

    /// <summary>Puts the named files copied aside back; those that were not there before are removed.</summary>
    public static string PutFilesBack(string directory, IEnumerable<string> files, string aside) =>
        $"for f in {string.Join(' ', files.Select(Q))}; do if [ -e {Q(aside)}/\"$f\" ]; then mv -f {Q(aside)}/\"$f\" {Q(directory)}/\"$f\" || exit 1; else rm -f {Q(directory)}/\"$f\"; fi; done; rmdir {Q(aside)} 2>/dev/null; true";

    /// <summary>Puts a directory moved aside back in place of whatever is there now.</summary>
    public static string PutBack(string path, string aside) =>
        $"if [ -e {Q(aside)} ]; then rm -rf {Q(path)} && mv {Q(aside)} {Q(path)}; else rm -rf {Q(path)}; fi";

    /// <summary>A private directory under /var/tmp owned by <paramref name="owner"/> (who uploads into it); prints its path.</summary>
    public static string MakeUploadDirectory(string owner) =>
        $"umask 077 && d=$(mktemp -d {TempPrefix}XXXXXX) && chown {Q(owner)} \"$d\" && echo \"$d\"";

    /// <summary>
    /// For each path in turn, <c>df -Pk</c>'s line for the filesystem it is on (or will be on: its
    /// nearest existing ancestor's, as a restore's staging dir may not exist yet).
    /// </summary>
    public static string FreeSpace(IEnumerable<string> paths) =>
        $"for p in {string.Join(' ', paths.Select(Q))}; do while [ ! -e \"$p\" ]; do p=$(dirname -- \"$p\"); done; " +
        "line=$(df -Pk -- \"$p\") || exit 1; printf '%s\\n' \"$line\" | tail -n 1; done";

    /// <summary>The directory the agent's private dirs on a node are made in (<see cref="TempPrefix"/>).</summary>
    public static string TempDirectory => Path.GetDirectoryName(TempPrefix)!;

    /// <summary>Moves an uploaded file into place, owned by root.</summary>
    public static string InstallAsRoot(string uploaded, string path) => $"chown 0:0 {Q(uploaded)} && mv {Q(uploaded)} {Q(path)}";

    /// <summary>
    /// The exec-mode snapshot, guarded on the node. First it removes what earlier runs left (an agent
    /// killed, a node rebooted): dirs whose guard has died. Then it prints a private dir and runs
    /// <c>etcdctl snapshot save</c> into it (which writes a .part file and renames it, so it needs a
    /// real file, never stdout). With <paramref name="compressionLevel"/>, <c>Etcd.Zstd</c> then
    /// compresses the file there (niced, <see cref="NodeZstdThreads"/> threads) and the plain file
    /// goes; a node where that fails or zstd is missing keeps the plain file. It prints
    /// <see cref="SnapshotCompressed"/> or <see cref="SnapshotSaved"/> for the file it kept, and stays,
    /// writing a byte a second, until the agent removes it.
    /// When the agent's connection goes (killed, cut), that write fails and the guard removes the
    /// dir itself: the snapshot, every Secret of the cluster, never outlives the run.
    /// </summary>
    public static string GuardedSnapshot(ControlPlaneSettings node, int? compressionLevel)
    {
        const string plain = $"\"$d/{SnapshotFile}\"";
        const string compressed = $"\"$d/{CompressedSnapshotFile}\"";
        var keep = compressionLevel is { } level
            ? $"if nice -n 10 {node.Etcd.Zstd} -q -{level.ToString(CultureInfo.InvariantCulture)} -T{NodeZstdThreads.ToString(CultureInfo.InvariantCulture)} {plain} -o {compressed} >&2; " +
              $"then echo {Q(SnapshotCompressed)}; rm -f {plain}; else rm -f {compressed}; echo {SnapshotSaved}; fi\n"
            : $"echo {SnapshotSaved}\n";
        return
            "umask 077\n" +
            $"for old in {TempPrefix}*; do\n" +
            $"  [ -f \"$old/guard.pid\" ] || [ -f \"$old/{SnapshotFile}\" ] || [ -f \"$old/{SnapshotFile}.part\" ] || [ -f \"$old/{CompressedSnapshotFile}\" ] || continue\n" +
            "  pid=$(cat \"$old/guard.pid\" 2>/dev/null)\n" +
            "  if [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null; then continue; fi\n" +
            "  rm -rf \"$old\" && echo \"removed $old, left by an earlier run\" >&2\n" +
            "done\n" +
            $"d=$(mktemp -d {TempPrefix}XXXXXX) || exit 1\n" +
            "trap 'rm -rf \"$d\"' EXIT\n" +
            "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM\n" +
            "echo $$ > \"$d/guard.pid\" || exit 1\n" +
            "echo \"$d\"\n" +
            $"{Etcdctl(node.Etcd.Etcdctl, node, "snapshot", "save")} {plain} >&2 || exit 1\n" +
            keep +
            $"while [ -e {plain} ] || [ -e {compressed} ]; do sleep 1; printf . || exit 141; done\n";
    }

    private static string Arguments(string[] arguments) => arguments.Length == 0 ? string.Empty : " " + string.Join(' ', arguments.Select(Q));

    private static string Q(string value) => ShellQuote.Quote(value);
}
