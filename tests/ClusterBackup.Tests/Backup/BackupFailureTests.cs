using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Backup;

/// <summary>What a failing node, key, etcd or config does to a run: one clear line, exit 1, nothing half-written.</summary>
[Collection(RigCollection.Name)]
public sealed class BackupFailureTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public async Task An_unknown_host_key_is_refused_with_its_fingerprint_and_how_to_add_it()
    {
        var knownHosts = await WriteTempAsync(_rig.Node2.KnownHostsLine + "\n");
        var config = _rig.Config("moto", "unknown-key", "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Defaults"]!["Ssh"]!["KnownHostsFile"] = knownHosts;

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(1, result.ExitCode);
        result.AssertError($"node cp1: connect: host key of [127.0.0.1]:{_rig.Node1.Port} is unknown");
        result.AssertError($"offered ssh-ed25519 SHA256:{await FingerprintAsync(_rig.Node1)}");
        result.AssertError($"ssh-keyscan -p {_rig.Node1.Port} -t ssh-ed25519 127.0.0.1 >> {knownHosts}");
        Assert.Empty(await ObjectsAsync("backups/unknown-key/"));
    }

    [Fact]
    public async Task A_changed_host_key_is_refused_as_changed()
    {
        var forged = $"[127.0.0.1]:{_rig.Node1.Port} {_rig.Node2.HostPublicKey}\n";
        var config = _rig.Config("moto", "changed-key", "tunnel", _rig.Node1);
        config["ClusterBackup"]!["Defaults"]!["Ssh"]!["KnownHostsFile"] = await WriteTempAsync(forged);

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(1, result.ExitCode);
        result.AssertError($"host key of [127.0.0.1]:{_rig.Node1.Port} CHANGED");
        Assert.Empty(await ObjectsAsync("backups/changed-key/"));
    }

    [Fact]
    public async Task When_the_first_control_plane_is_down_the_second_gives_the_snapshot()
    {
        var config = _rig.Config("moto", "first-down", "tunnel");
        var down = LocalRig.ControlPlane(_rig.Node1);
        down["Name"] = "cp0";
        down["Ssh"]!["Port"] = Tools.FreePort(); // nothing listens there
        ControlPlanes(config).Insert(0, down);

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.True(result.ExitCode == 0, result.ToString());
        result.AssertError("warning: cluster first-down: node cp0: unreachable");
        var manifest = await SingleSetAsync(config, "first-down");
        Assert.Equal("cp1", manifest.GetProperty("etcd").GetProperty("node").GetString());
        Assert.Equal(["cp0"], manifest.GetProperty("unreachableNodes").EnumerateArray().Select(n => n.GetString()));
    }

    [Fact]
    public async Task With_etcd_down_on_every_control_plane_nothing_is_committed_and_the_other_cluster_still_is()
    {
        var config = _rig.Config("moto", "good", "tunnel", _rig.Node1);
        var bad = _rig.Config("moto", "etcd-down", "tunnel")["ClusterBackup"]!["Clusters"]![0]!.DeepClone().AsObject();
        bad["Etcd"] = new JsonObject { ["ClientPort"] = Tools.FreePort() };
        ((JsonArray)config["ClusterBackup"]!["Clusters"]!).Insert(0, bad);

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(1, result.ExitCode);
        var errors = result.Error.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
        var error = Assert.Single(errors);
        Assert.StartsWith("error: cluster etcd-down: etcd snapshot: no control plane gave a snapshot: cp1: etcd snapshot: etcd does not answer", error, StringComparison.Ordinal);
        Assert.Contains("; cp2: etcd snapshot: etcd does not answer", error, StringComparison.Ordinal);
        result.AssertOutput("good: committed set");
        Assert.Empty(await ObjectsAsync("backups/etcd-down/"));
        Assert.Empty(await OpenUploadsAsync("backups/etcd-down/"));
    }

    [Fact]
    public async Task A_snapshot_damaged_in_transit_aborts_its_multipart_upload_and_commits_nothing()
    {
        // More than one 5 MiB part, so the damage is found after parts were uploaded.
        await _rig.Etcd.PutBulkAsync();

        var damaging = await WriteTempAsync("""
            #!/bin/bash
            # etcdctl that damages the snapshots it saves, as a broken disk or transfer would; the
            # file appears complete (renamed into place), so the agent reads it to its end
            case " $* " in
              *" snapshot save "*)
                args=("$@"); last=${args[-1]}; unset 'args[-1]'
                /usr/bin/etcdctl "${args[@]}" "$last.tmp" || exit $?
                printf '\253' | dd of="$last.tmp" bs=1 seek=5000 count=1 conv=notrunc 2>/dev/null
                mv "$last.tmp" "$last" ;;
              *) exec /usr/bin/etcdctl "$@" ;;
            esac
            """);
        File.SetUnixFileMode(damaging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var config = _rig.Config("moto", "damaged", "exec", _rig.Node1);
        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Etcdctl"] = damaging;

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(1, result.ExitCode);
        result.AssertError("error: cluster damaged: node cp1: etcd snapshot: the snapshot's SHA-256 does not match etcd's trailer");
        var requests = _rig.Moto.FullLog();
        // A multipart upload was started (its parts may still have been in flight), then aborted.
        Assert.Matches(@"POST /cluster-backups/backups/damaged/\S+/etcd\.db\.zst\.age\?uploads", requests);
        Assert.Matches(@"DELETE /cluster-backups/backups/damaged/\S+/etcd\.db\.zst\.age\?uploadId=\S+ HTTP/1.1"" 204", requests);
        Assert.Empty(await ObjectsAsync("backups/damaged/"));
        Assert.Empty(await OpenUploadsAsync("backups/damaged/"));
    }

    [Fact]
    public async Task In_exec_mode_an_etcdctl_that_fails_while_the_agent_streams_its_file_fails_the_run_and_stores_nothing()
    {
        var failing = await WriteTempAsync("""
            #!/bin/bash
            # etcdctl that writes part of a snapshot, then loses etcd
            case " $* " in
              *" snapshot save "*)
                args=("$@"); last=${args[-1]}
                head -c 3000000 /dev/urandom > "$last.part"; sleep 1
                echo 'Error: rpc error: code = Unavailable desc = connection lost' >&2; exit 1 ;;
              *) exec /usr/bin/etcdctl "$@" ;;
            esac
            """);
        File.SetUnixFileMode(failing, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var config = _rig.Config("moto", "exec-cut", "exec", _rig.Node1);
        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Etcdctl"] = failing;
        var before = LocalRig.NodeTempDirectories();

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(1, result.ExitCode);
        result.AssertError("error: cluster exec-cut: node cp1: etcd snapshot: etcdctl snapshot save failed on the node: Error: rpc error: code = Unavailable desc = connection lost");
        Assert.Empty(await ObjectsAsync("backups/exec-cut/"));
        Assert.Empty(await OpenUploadsAsync("backups/exec-cut/"));
        Assert.Empty(LocalRig.NodeTempDirectories().Except(before));
    }

    [Fact]
    public async Task A_failing_archive_after_the_snapshot_removes_what_the_run_had_stored()
    {
        var config = _rig.Config("moto", "no-manifests", "tunnel");
        ControlPlanes(config)[1]!["Paths"]!["Manifests"] = "/nonexistent/manifests";

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(1, result.ExitCode);
        result.AssertError("etcd snapshot of no-manifests taken on cp1"); // the snapshot and cp1's archives were stored, then removed
        result.AssertError("error: cluster no-manifests: node cp2: manifests archive: ");
        result.AssertError("/nonexistent/manifests: no such directory");
        Assert.Empty(await ObjectsAsync("backups/no-manifests/"));
    }

    [Fact]
    public async Task A_missing_PKI_dir_fails_the_run_before_the_snapshot_is_taken()
    {
        var config = _rig.Config("moto", "no-pki", "tunnel");
        ControlPlanes(config)[1]!["Paths"]!["Pki"] = "/nonexistent/pki";

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(1, result.ExitCode);
        result.AssertError("error: cluster no-pki: node cp2: pki archive: /nonexistent/pki: no such directory");
        Assert.DoesNotContain("etcd snapshot of", result.Error, StringComparison.Ordinal); // no upload wasted on a set that would fail
        Assert.Empty(await ObjectsAsync("backups/no-pki/"));
    }

    [Fact]
    public async Task A_PKI_dir_without_the_cluster_CA_fails_the_run_naming_it_and_the_next_run_with_the_right_dir_succeeds()
    {
        var config = _rig.Config("moto", "empty-pki", "tunnel");
        var empty = Directory.CreateTempSubdirectory("cluster-backup-empty-pki-").FullName;
        try
        {
            ControlPlanes(config)[1]!["Paths"]!["Pki"] = empty; // exists, as a wrong Paths.Pki often does

            var result = await CliRunner.RunAsync(config, "backup");

            Assert.Equal(1, result.ExitCode);
            result.AssertError($"error: cluster empty-pki: node cp2: pki archive: {empty} is empty: it is not a kubeadm PKI dir; set Paths.Pki to the dir with the cluster's CAs");
            Assert.DoesNotContain("etcd snapshot of", result.Error, StringComparison.Ordinal);
            Assert.Empty(await ObjectsAsync("backups/empty-pki/"));

            ControlPlanes(config)[1]!["Paths"]!["Pki"] = _rig.Node2.PkiDirectory;
            var next = await CliRunner.RunAsync(config, "backup");
            Assert.True(next.ExitCode == 0, next.ToString());
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    [Fact]
    public async Task A_PKI_without_its_CA_keys_is_kept_with_a_warning_naming_what_it_lacks()
    {
        var config = _rig.Config("moto", "external-ca", "tunnel", _rig.Node1);
        var pki = Directory.CreateTempSubdirectory("cluster-backup-external-ca-").FullName;
        try
        {
            await Tools.CheckAsync("cp", "-a", _rig.Node1.PkiDirectory + "/.", pki);
            File.Delete(Path.Combine(pki, "ca.key")); // kubeadm's external-CA mode
            File.Delete(Path.Combine(pki, "front-proxy-ca.key"));
            ControlPlanes(config)[0]!["Paths"]!["Pki"] = pki;

            var result = await CliRunner.RunAsync(config, "backup");

            Assert.True(result.ExitCode == 0, result.ToString());
            result.AssertError($"external-ca: the PKI of cp1 ({pki}) lacks ca.key, front-proxy-ca.key: a restore with --pki puts back only what the set holds");
            await SingleSetAsync(config, "external-ca");
        }
        finally
        {
            Directory.Delete(pki, recursive: true);
        }
    }

    [Fact]
    public async Task A_malformed_config_names_the_key_exits_78_and_contacts_nothing()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var config = _rig.Config("moto", "malformed", "tunnel", _rig.Node1);
        ControlPlanes(config)[0]!["Ssh"]!["Port"] = port;
        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Mode"] = "tunel";

        var result = await CliRunner.RunAsync(config, "backup");

        Assert.Equal(78, result.ExitCode);
        result.AssertError("ControlPlanes:0:Etcd:Mode: 'tunel' is not one of tunnel, exec");
        Assert.False(listener.Pending(), "the agent connected to a node although its configuration was invalid");
    }

    private static JsonArray ControlPlanes(JsonObject config) =>
        (JsonArray)config["ClusterBackup"]!["Clusters"]![0]!["ControlPlanes"]!;

    private static async Task<JsonElement> SingleSetAsync(JsonObject config, string cluster)
    {
        var list = await CliRunner.RunAsync(config, "list", "--cluster", cluster, "--json");
        Assert.Equal(0, list.ExitCode);
        return Assert.Single(JsonSerializer.Deserialize<JsonElement>(list.Output).EnumerateArray());
    }

    private Task<IReadOnlyList<string>> ObjectsAsync(string prefix) => _rig.Moto.ObjectKeysAsync(LocalRig.Bucket, prefix);

    private Task<IReadOnlyList<string>> OpenUploadsAsync(string prefix) => _rig.Moto.OpenUploadKeysAsync(LocalRig.Bucket, prefix);

    private static async Task<string> FingerprintAsync(SshNode node)
    {
        var output = await Tools.CheckAsync("ssh-keygen", "-lf", Path.Combine(node.Root, "ssh_host_ed25519_key.pub"));
        return output.Split(' ')[1]["SHA256:".Length..];
    }

    private static async Task<string> WriteTempAsync(string content)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-test-").FullName, "file");
        await File.WriteAllTextAsync(path, content);
        return path;
    }
}
