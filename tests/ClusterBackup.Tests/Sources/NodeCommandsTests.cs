using ClusterBackup.Configuration;
using ClusterBackup.Rig;
using ClusterBackup.Sources;

namespace ClusterBackup.Tests.Sources;

/// <summary>The commands run on nodes, checked by a real POSIX shell on awkward paths.</summary>
public sealed class NodeCommandsTests : IDisposable
{
    private const string Awkward = "it's a $(dir) `with` \"everything\"";
    private readonly string _root = Directory.CreateTempSubdirectory("cluster-backup-commands-").FullName;

    private static ControlPlaneSettings Node(bool sudo = false) => new(
        "cp1", "10.0.0.1",
        new SshOptions { User = "backup", Sudo = sudo },
        new EtcdOptions { ClientPort = 2379, Etcdctl = "crictl exec -i etcd etcdctl" },
        new PathOptions { Pki = "/etc/kubernetes/my pki" },
        new RestoreOptions());

    [Fact]
    public void Etcdctl_puts_the_configured_runner_first_unquoted_and_quotes_every_value()
    {
        var command = NodeCommands.Etcdctl("crictl exec -i etcd etcdctl", Node(), "get", string.Empty, "--prefix");

        Assert.Equal(
            "ETCDCTL_API=3 crictl exec -i etcd etcdctl --cacert='/etc/kubernetes/my pki/etcd/ca.crt' " +
            "--cert='/etc/kubernetes/my pki/etcd/healthcheck-client.crt' --key='/etc/kubernetes/my pki/etcd/healthcheck-client.key' " +
            "--endpoints=https://127.0.0.1:2379 get '' --prefix",
            command);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Every_command_is_valid_shell_whatever_the_paths(bool sudo)
    {
        var node = Node(sudo);
        string[] commands =
        [
            NodeCommands.Etcdctl(node.Etcd.Etcdctl, node, "endpoint", "health"),
            NodeCommands.EtcdctlAt("etcdctl", node.Paths, "https://127.0.0.1:1,https://127.0.0.1:2", "endpoint", "health"),
            NodeCommands.EtcdctlOffline("etcdctl", "snapshot", "restore", Awkward, "--name", Awkward),
            NodeCommands.ReadFile(Awkward), NodeCommands.ReadInSlices(Awkward, 4), NodeCommands.ReadFirstOf(Awkward, Awkward), NodeCommands.RemoveTree(Awkward),
            NodeCommands.RemoveFiles(Awkward, Awkward), NodeCommands.MakePrivateDirectory(Awkward), NodeCommands.TestDirectory(Awkward),
            NodeCommands.TarDirectory(Awkward), NodeCommands.TarFile(Awkward, Awkward), NodeCommands.PkiDirectoryState(Awkward, Awkward), NodeCommands.Untar(Awkward, Awkward), NodeCommands.MoveStaticPodManifests(Awkward, Awkward),
            NodeCommands.WaitUntilEtcdStopped(2379, Awkward), NodeCommands.IfListening(2379, "true"), NodeCommands.WaitUntil("true", Awkward), NodeCommands.MoveAsideIfPresent(Awkward, Awkward), NodeCommands.CopyAsideIfPresent(Awkward, Awkward),
            NodeCommands.PutBack(Awkward, Awkward), NodeCommands.MoveIntoPlace(Awkward, Awkward), NodeCommands.MoveIntoPlace(Awkward, Awkward, Awkward), NodeCommands.RemoveLeftoverRestores(Awkward), NodeCommands.MakeUploadDirectory(Awkward), NodeCommands.InstallAsRoot(Awkward, Awkward),
            NodeCommands.GuardedSnapshot(node, null), NodeCommands.GuardedSnapshot(node, 3), NodeCommands.FreeSpace([Awkward, Awkward]), NodeCommands.LeftoverRestoresKiB(Awkward), NodeCommands.IsMountPoint(Awkward),
        ];

        foreach (var command in commands)
        {
            var check = await Tools.RunAsync("sh", ["-n", "-c", command]);
            Assert.True(check.ExitCode == 0, $"{command}\n{check}");
        }
    }

    [Fact]
    public async Task Waiting_for_etcd_to_stop_waits_for_a_process_with_its_data_dir_and_no_other()
    {
        var dataDir = Path.Combine(_root, Awkward + " [a].*");
        var exited = Path.Combine(_root, "exited");
        // A process with the data dir among its arguments, which leaves a file as it exits (two
        // commands, so that bash stays the process and keeps its arguments)...
        using var etcd = System.Diagnostics.Process.Start("bash", ["-c", "sleep 1; touch \"$1\"", $"--data-dir={dataDir}/", exited]);
        // ...and one whose data dir only begins like it, which the wait must not wait for (it would fail after 60 s).
        using var other = System.Diagnostics.Process.Start("bash", ["-c", "sleep 90; true", $"--data-dir={dataDir}x"]);
        try
        {
            var wait = await Tools.RunAsync("sh", ["-c", NodeCommands.WaitUntilEtcdStopped(1, dataDir)]);

            Assert.True(wait.ExitCode == 0, wait.ToString());
            Assert.True(File.Exists(exited), "the wait ended while a process ran with the data dir");
        }
        finally
        {
            other.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_file_in_slices_gives_its_size_then_one_slice_per_line_read()
    {
        var path = Path.Combine(_root, Awkward);
        var content = new byte[(2 * 1024 * 1024) + 3];
        Random.Shared.NextBytes(content);
        await File.WriteAllBytesAsync(path, content);
        var script = Path.Combine(_root, "slices.sh");
        await File.WriteAllTextAsync(script, NodeCommands.ReadInSlices(path, 1));

        // Two lines: two 1 MiB slices and no more, then the end of input ends the command.
        var two = await Tools.RunAsync("sh", ["-c", $"printf '\n\n' | sh {script} | od -An -v -tx1 | tr -d ' \n'"]);
        // Five lines: the whole file, the third slice short, the rest empty.
        var all = await Tools.RunAsync("sh", ["-c", $"printf '\n\n\n\n\n' | sh {script} | od -An -v -tx1 | tr -d ' \n'"]);

        var size = Convert.ToHexStringLower(System.Text.Encoding.ASCII.GetBytes($"{content.Length}\n"));
        Assert.True(two.ExitCode == 0, two.ToString());
        Assert.Equal(size + Convert.ToHexStringLower(content.AsSpan(0, 2 * 1024 * 1024)), two.Output);
        Assert.True(all.ExitCode == 0, all.ToString());
        Assert.Equal(size + Convert.ToHexStringLower(content), all.Output);
    }

    [Fact]
    public async Task A_command_behind_IfListening_runs_only_while_the_port_listens()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        var up = await Tools.RunAsync("sh", ["-c", NodeCommands.IfListening(port, "echo ran")]);
        listener.Stop();
        var down = await Tools.RunAsync("sh", ["-c", NodeCommands.IfListening(port, "echo ran")]);

        Assert.True(up.ExitCode == 0 && up.Output.Trim() == "ran", up.ToString());
        Assert.Equal(1, down.ExitCode);
        Assert.Empty(down.Output);
        Assert.Equal($"nothing listens on 127.0.0.1:{port}", down.Error.Trim());
    }

    [Fact]
    public async Task A_wait_on_a_port_retries_until_something_listens_there_and_then_runs_its_check()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var marker = Path.Combine(_root, "checked");
        var waiting = Tools.RunAsync("sh", ["-c", NodeCommands.WaitUntil(NodeCommands.IfListening(port, $"touch {marker}"), "never listened")]);
        await Task.Delay(1200);
        Assert.False(File.Exists(marker), "the check ran while nothing listened");
        Assert.False(waiting.IsCompleted);

        listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
        listener.Start();
        try
        {
            var result = await waiting.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.True(File.Exists(marker));
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task A_wait_whose_check_never_passes_fails_with_its_message_once_its_time_is_up()
    {
        var result = await Tools.RunAsync("sh", ["-c", NodeCommands.WaitUntil("exit 1", Awkward, seconds: 2)]);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(Awkward, result.Error.Trim());
    }

    [Fact]
    public async Task The_data_dir_moved_aside_is_put_back_exactly()
    {
        var data = Path.Combine(_root, Awkward);
        var aside = data + ".before-restore";
        Directory.CreateDirectory(Path.Combine(data, "member"));
        await File.WriteAllTextAsync(Path.Combine(data, "member", "db"), "old");

        await Tools.CheckAsync("sh", "-c", NodeCommands.MoveAsideIfPresent(data, aside));
        Assert.False(Directory.Exists(data));
        Directory.CreateDirectory(Path.Combine(data, "partial"));
        await Tools.CheckAsync("sh", "-c", NodeCommands.PutBack(data, aside));

        Assert.Equal("old", await File.ReadAllTextAsync(Path.Combine(data, "member", "db")));
        Assert.False(Directory.Exists(Path.Combine(data, "partial")));
        Assert.False(Directory.Exists(aside));
    }

    [Fact]
    public async Task The_restored_data_dir_goes_in_place_only_while_nothing_is_there()
    {
        var data = Path.Combine(_root, Awkward);
        var restored = data + ".restored";
        Directory.CreateDirectory(Path.Combine(restored, "member"));
        Directory.CreateDirectory(Path.Combine(data, "member", "wal")); // made again by an etcd started meanwhile

        var refused = await Tools.RunAsync("sh", ["-c", NodeCommands.MoveIntoPlace(restored, data)]);

        Assert.Equal(1, refused.ExitCode);
        Assert.Equal($"{data} exists again: something made it after etcd stopped", refused.Error.Trim());
        Assert.True(Directory.Exists(Path.Combine(restored, "member")));
        Assert.False(Directory.Exists(Path.Combine(data, Path.GetFileName(restored))));

        Directory.Delete(data, recursive: true);
        await Tools.CheckAsync("sh", "-c", NodeCommands.MoveIntoPlace(restored, data));

        Assert.True(Directory.Exists(Path.Combine(data, "member")));
        Assert.False(Directory.Exists(restored));
    }

    [Fact]
    public async Task Leftover_restored_dirs_are_removed_and_nothing_else()
    {
        var data = Path.Combine(_root, Awkward);
        string[] leftovers = [data + ".restored-20261127T010203Z", data + ".restored-20261128T010203Z"];
        string[] kept = [data, data + ".before-restore-20261127T010203Z", data + "x.restored-1", Path.Combine(_root, "other.restored-1")];
        foreach (var directory in leftovers.Concat(kept))
        {
            Directory.CreateDirectory(Path.Combine(directory, "member"));
        }

        await File.WriteAllBytesAsync(Path.Combine(leftovers[0], "member", "db"), new byte[3 * 1024 * 1024]);
        var kib = long.Parse(await Tools.CheckAsync("sh", "-c", NodeCommands.LeftoverRestoresKiB(data + ".restored-")), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(kib, 3 * 1024, 4 * 1024);

        await Tools.CheckAsync("sh", "-c", NodeCommands.RemoveLeftoverRestores(data + ".restored-"));
        await Tools.CheckAsync("sh", "-c", NodeCommands.RemoveLeftoverRestores(data + ".restored-")); // none left: still fine
        Assert.Equal("0", (await Tools.CheckAsync("sh", "-c", NodeCommands.LeftoverRestoresKiB(data + ".restored-"))).Trim());

        Assert.All(leftovers, d => Assert.False(Directory.Exists(d)));
        Assert.All(kept, d => Assert.True(Directory.Exists(d)));
    }

    [Fact]
    public async Task A_data_dir_that_is_a_mount_point_is_told_from_a_plain_one_and_a_missing_one()
    {
        var plain = Path.Combine(_root, Awkward);
        var mounted = Path.Combine(_root, "mounted " + Awkward);
        Directory.CreateDirectory(plain);
        Directory.CreateDirectory(mounted);
        await Tools.CheckAsync("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mounted);
        try
        {
            Assert.Equal(0, (await Tools.RunAsync("sh", ["-c", NodeCommands.IsMountPoint(mounted)])).ExitCode);
            Assert.NotEqual(0, (await Tools.RunAsync("sh", ["-c", NodeCommands.IsMountPoint(plain)])).ExitCode);
            Assert.NotEqual(0, (await Tools.RunAsync("sh", ["-c", NodeCommands.IsMountPoint(plain + "-missing")])).ExitCode);
        }
        finally
        {
            await Tools.RunAsync("umount", ["-l", mounted]);
        }
    }

    [Fact]
    public async Task Free_space_is_that_of_the_nearest_existing_ancestor_one_df_line_per_path()
    {
        var missing = Path.Combine(_root, Awkward, "not", "there");

        var output = await Tools.CheckAsync("sh", "-c", NodeCommands.FreeSpace([missing, _root, "/"]));

        var space = FreeSpace.Parse(output, [missing, _root, "/"]);
        Assert.NotNull(space);
        Assert.Equal(space[_root], space[missing]);
        Assert.Equal("/", space["/"].MountPoint);
        Assert.True(space["/"].AvailableBytes > 0 && space["/"].AvailableBytes <= space["/"].TotalBytes);
    }

    [Fact]
    public async Task Static_pod_manifests_move_and_others_stay()
    {
        var manifests = Directory.CreateDirectory(Path.Combine(_root, "manifests dir")).FullName;
        var staging = Directory.CreateDirectory(Path.Combine(_root, "staging's")).FullName;
        foreach (var name in new[] { "etcd.yaml", "kube-apiserver.yaml", "kube-scheduler.yaml" })
        {
            await File.WriteAllTextAsync(Path.Combine(manifests, name), name);
        }

        await Tools.CheckAsync("sh", "-c", NodeCommands.MoveStaticPodManifests(manifests, staging));

        Assert.Equal(["etcd.yaml", "kube-apiserver.yaml"], Directory.EnumerateFiles(staging).Select(Path.GetFileName).Order());
        Assert.Equal(["kube-scheduler.yaml"], Directory.EnumerateFiles(manifests).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_missing_directory_is_never_archived_as_empty()
    {
        var result = await Tools.RunAsync("sh", ["-c", NodeCommands.TarDirectory(Path.Combine(_root, "nope"))]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no such directory", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task One_file_is_archived_by_its_name_with_its_mode_a_link_as_its_target_and_a_missing_one_as_an_empty_archive()
    {
        var directory = Directory.CreateDirectory(Path.Combine(_root, Awkward)).FullName;
        var file = Path.Combine(directory, Awkward + ".yaml");
        await File.WriteAllTextAsync(file, "kind: EncryptionConfiguration\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var archive = Path.Combine(_root, "one.tar");
        var missing = Path.Combine(_root, "none.tar");

        var one = await Tools.RunAsync("sh", ["-c", $"{{ {NodeCommands.TarFile(directory, Awkward + ".yaml")}; }} > '{archive}'"]);
        var none = await Tools.RunAsync("sh", ["-c", $"{{ {NodeCommands.TarFile(directory, "gone.yaml")}; }} > '{missing}'"]);

        Assert.True(one.ExitCode == 0, one.ToString());
        var listed = await Tools.RunAsync("tar", ["-tvf", archive]);
        Assert.StartsWith("-rw------- ", listed.Output, StringComparison.Ordinal);
        Assert.EndsWith(" " + Awkward + ".yaml", listed.Output.TrimEnd('\n'), StringComparison.Ordinal);
        Assert.True(none.ExitCode == 0, none.ToString());
        Assert.Equal(string.Empty, (await Tools.RunAsync("tar", ["-tf", missing])).Output);

        // A link is archived as the file it points to: the keys, not a name that may dangle.
        var link = Path.Combine(directory, "current.yaml");
        File.CreateSymbolicLink(link, file);
        var linked = Path.Combine(_root, "link.tar");
        Assert.Equal(0, (await Tools.RunAsync("sh", ["-c", $"{{ {NodeCommands.TarFile(directory, "current.yaml")}; }} > '{linked}'"])).ExitCode);
        Assert.StartsWith("-rw------- ", (await Tools.RunAsync("tar", ["-tvf", linked])).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_PKI_dir_is_told_apart_from_a_missing_an_empty_and_another_dir()
    {
        var pki = Directory.CreateDirectory(Path.Combine(_root, Awkward, "pki")).FullName;
        var other = Directory.CreateDirectory(Path.Combine(_root, Awkward, "kubernetes")).FullName;
        await File.WriteAllTextAsync(Path.Combine(other, "admin.conf"), "x");

        async Task<string> StateAsync(string directory) => (await Tools.RunAsync("sh", ["-c", NodeCommands.PkiDirectoryState(directory, "ca.crt")])).Output.Trim();

        Assert.Equal("missing", await StateAsync(Path.Combine(_root, "gone")));
        Assert.Equal("empty", await StateAsync(pki));
        Assert.Equal("other", await StateAsync(other));
        await File.WriteAllTextAsync(Path.Combine(pki, "ca.crt"), "x");
        Assert.Equal("ok", await StateAsync(pki));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
