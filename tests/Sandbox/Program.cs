using System.Diagnostics;
using System.Text.Json;
using ClusterBackup.Rig;

// usage: Sandbox PATH-TO-cluster-backup
// Starts a kubeadm-like node (TLS etcd behind a real sshd, host key pinned) and a local S3 server
// (moto_server), writes a configuration for them, and runs the real binary: config check, backup, list,
// verify --deep and download (decrypting with the sandbox's age key); then breaks a one-member control
// plane and restores it.
if (args.Length != 1 || !File.Exists(args[0]))
{
    Console.Error.WriteLine("usage: Sandbox PATH-TO-cluster-backup");
    return 2;
}

var binary = Path.GetFullPath(args[0]);
var root = Path.Combine(Path.GetTempPath(), "cluster-backup-sandbox");
if (Directory.Exists(root))
{
    Directory.Delete(root, recursive: true);
}

Console.WriteLine($"Starting the sandbox in {root}: etcd (TLS, kubeadm PKI), two sshd control planes, moto_server, s3rver ...");
await using var rig = await LocalRig.StartAsync(root);
for (var i = 1; i <= 5; i++)
{
    await rig.Etcd.PutAsync($"/registry/configmaps/default/sandbox-{i}", $"value {i}");
}

var config = Path.Combine(root, "appsettings.json");
await File.WriteAllTextAsync(config, rig.Config("moto", "sandbox").ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine($"Configuration: {config}\n");

var failed = false;
foreach (var command in new[]
         {
             "config check", "backup", "list",
             $"verify --deep --identity {rig.AgeIdentityFile}",
             $"download --cluster sandbox --to {Path.Combine(root, "restore")} --identity {rig.AgeIdentityFile}",
         })
{
    failed |= await RunAsync(command, config) != 0;
}

// The worst day: a single-member control plane (etcd run by a stand-in kubelet from etcd.yaml) loses its data.
Console.WriteLine("Starting a one-member control plane whose etcd a stand-in kubelet runs from its static pod ...");
await using var plane = await EtcdCluster.StartAsync(rig, "lab", 1);
await plane.EtcdctlAsync(["put", "/registry/configmaps/default/precious", "backed up"]);
var labConfig = Path.Combine(root, "lab.json");
await File.WriteAllTextAsync(labConfig, plane.Config("lab").ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
failed |= await RunAsync("backup", labConfig) != 0;
await plane.Members[0].CorruptAsync();
Console.WriteLine("lab-cp1's etcd database is now corrupted and crash-looping.\n");
foreach (var command in new[] { "restore --cluster lab --dry-run", $"restore --cluster lab --yes --identity {rig.AgeIdentityFile}" })
{
    failed |= await RunAsync(command, labConfig) != 0;
}

var read = await plane.EtcdctlAsync(["get", "/registry/configmaps/default/precious", "--print-value-only"]);
Console.WriteLine($"after the restore, /registry/configmaps/default/precious = {read.Output.Trim()}");

Console.WriteLine($"""

    The encrypted artifacts are in s3://{LocalRig.Bucket}/backups/sandbox/ on {rig.Moto.Endpoint};
    the plain, checked files in {Path.Combine(root, "restore")}; the age key in {rig.AgeIdentityFile}. Try:
      AWS_ACCESS_KEY_ID={S3Server.AccessKey} AWS_SECRET_ACCESS_KEY={S3Server.SecretKey} aws --endpoint-url {rig.Moto.Endpoint} s3 ls --recursive s3://{LocalRig.Bucket}/
      {binary} list --json --config {config}
    """);

if (!Console.IsInputRedirected)
{
    Console.WriteLine("The sandbox keeps running; press Enter to stop it.");
    Console.ReadLine();
}

return failed ? 1 : 0;

async Task<int> RunAsync(string command, string configFile)
{
    Console.WriteLine($"$ cluster-backup {command} --config {configFile}");
    var info = new ProcessStartInfo(binary) { UseShellExecute = false };
    foreach (var word in command.Split(' '))
    {
        info.ArgumentList.Add(word);
    }

    info.ArgumentList.Add("--config");
    info.ArgumentList.Add(configFile);
    using var process = Process.Start(info)!;
    await process.WaitForExitAsync();
    Console.WriteLine($"(exit {process.ExitCode})\n");
    return process.ExitCode;
}
