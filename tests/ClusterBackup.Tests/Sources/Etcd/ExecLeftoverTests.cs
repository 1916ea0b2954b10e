using ClusterBackup.Rig;
using ClusterBackup.Tests.Support;

namespace ClusterBackup.Tests.Sources.Etcd;

/// <summary>Exec mode puts the plaintext snapshot on the node: it must never outlive the run that made it.</summary>
[Collection(RigCollection.Name)]
public sealed class ExecLeftoverTests(RigFixture fixture)
{
    private readonly LocalRig _rig = fixture.Rig;

    [Fact]
    public async Task An_agent_killed_while_the_snapshot_is_on_the_node_leaves_nothing_there_after_the_next_run()
    {
        const string cluster = "exec-killed";
        var before = LocalRig.NodeTempDirectories();

        // A dir an agent of an earlier version left when the node rebooted mid-run: no guard, a snapshot.
        var staleOnNode = NewNodeTempDirectory();
        await File.WriteAllTextAsync(Path.Combine(staleOnNode, "snapshot.db"), "secret");

        // etcdctl that holds on after saving, so the agent is killed while the snapshot sits on the node.
        var slow = Path.Combine(Directory.CreateTempSubdirectory("cluster-backup-test-").FullName, "etcdctl");
        await File.WriteAllTextAsync(slow, """
            #!/bin/sh
            /usr/bin/etcdctl "$@" || exit $?
            case " $* " in *" snapshot save "*) sleep 4 ;; esac
            """);
        File.SetUnixFileMode(slow, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var config = _rig.Config("moto", cluster, "exec", _rig.Node1);
        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Etcdctl"] = slow;

        await using (var agent = await CliProcess.StartAsync(config, cluster, "backup"))
        {
            await agent.WaitUntilAsync(
                () => Task.FromResult(LocalRig.NodeTempDirectories().Except(before).Any(d => d != staleOnNode && File.Exists(Path.Combine(d, "snapshot.db")))),
                "the snapshot saved on the node", TimeSpan.FromSeconds(60));
            Assert.DoesNotContain(staleOnNode, LocalRig.NodeTempDirectories()); // the run removed the stale dir first
            await agent.StopAsync(); // SIGKILL
        }

        // The guard on the node notices the dead connection and removes the snapshot by itself.
        Assert.Empty(await LocalRig.NodeTempDirectoriesLeftAsync(before));

        // A guard that died too (kill -9 on the node) is found by the next run.
        var orphan = NewNodeTempDirectory();
        await File.WriteAllTextAsync(Path.Combine(orphan, "guard.pid"), "999999999\n");
        await File.WriteAllTextAsync(Path.Combine(orphan, "snapshot.db"), "secret");
        config["ClusterBackup"]!["Defaults"]!["Etcd"]!["Etcdctl"] = "etcdctl";
        var next = await CliRunner.RunAsync(config, "backup");

        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.Empty(LocalRig.NodeTempDirectories().Except(before));
    }

    private static string NewNodeTempDirectory()
    {
        var path = $"/var/tmp/cluster-backup.{Guid.NewGuid():N}"[..30];
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }
}
