using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClusterBackup.Rig;

// usage: Bench PATH-TO-cluster-backup SIZE-MB CACHE-DIR
// Builds (once, cached as a snapshot in CACHE-DIR) an etcd database of SIZE-MB of k8s-like JSON values,
// serves it from a TLS etcd behind a real sshd, with s3rver and a directory as stores, and measures in
// one run: etcdctl snapshot save alone, the agent in each mode and store, the manual procedure, a small
// cluster's backup, and list of 1,000 sets (SIZE-MB 0: only those). Prints tables: wall time, ratio, peak RSS, CPU;
// and, for the direct save and each backup row, the CPU of etcd, sshd and s3rver beside it and the floor the cores allow.
// usage: Bench PATH-TO-cluster-backup fleet CLUSTERS
// Many one-node clusters on the rig's two nodes: one `backup` of them all (one at a time, then
// Scheduler:MaxConcurrentRuns at once), and two agents sharing a PostgreSQL scheduler that find them
// all due at once; wall time and each process's peak RSS.
var fleet = args.Length == 3 && args[1] == "fleet" && int.TryParse(args[2], CultureInfo.InvariantCulture, out var fleetSize) ? fleetSize : 0;
var sizeMb = 0;
if (!(args.Length == 3 && File.Exists(args[0]) && (fleet > 0 || int.TryParse(args[1], CultureInfo.InvariantCulture, out sizeMb))))
{
    Console.Error.WriteLine("usage: Bench PATH-TO-cluster-backup SIZE-MB CACHE-DIR | Bench PATH-TO-cluster-backup fleet CLUSTERS");
    return 2;
}

var binary = Path.GetFullPath(args[0]);
var cache = Path.Combine(Path.GetFullPath(fleet > 0 ? Path.GetTempPath() : args[2]), $"k8s-like-{sizeMb}mb.db");
var root = Path.Combine(Path.GetTempPath(), "cluster-backup-bench");
if (Directory.Exists(root))
{
    Directory.Delete(root, recursive: true);
}

Directory.CreateDirectory(root);
Directory.CreateDirectory(Path.GetDirectoryName(cache)!);
// The agent's manifest cache starts empty in each run, so that the first list measures storage.
Environment.SetEnvironmentVariable("XDG_CACHE_HOME", Path.Combine(root, "xdg-cache"));
Environment.SetEnvironmentVariable("CACHE_DIRECTORY", null);
var etcdctlEnv = new Dictionary<string, string> { ["ETCDCTL_API"] = "3" };
if (sizeMb > 0 && File.Exists(cache))
{
    Console.WriteLine($"Restoring the cached database {cache} ...");
    await Tools.CheckAsync("etcdctl", ["snapshot", "restore", cache, "--data-dir", Path.Combine(root, "etcd"), "--name", "cp1",
        "--initial-cluster", "cp1=https://127.0.0.1:2380", "--initial-advertise-peer-urls", "https://127.0.0.1:2380"], etcdctlEnv);
}

Console.WriteLine("Starting etcd (TLS), sshd, moto_server and s3rver on loopback ...");
await using var rig = await LocalRig.StartAsync(root);
if (fleet > 0)
{
    await FleetAsync(fleet);
    return 0;
}

if (Environment.GetEnvironmentVariable("BENCH_HOLD") == "1" && sizeMb > 0)
{
    await HoldAsync();
    return 0;
}

if (sizeMb > 0)
{
    await LargeAsync();
}

await SmallAsync();
return 0;

// The large database: etcdctl alone, the agent in each mode and store, the manual procedure.
async Task LargeAsync()
{
    await EnsureDatabaseAsync();
    var status = JsonSerializer.Deserialize<JsonElement>(await Etcdctl("endpoint", "status", "-w", "json"))[0].GetProperty("Status");
    var dbSize = status.GetProperty("dbSize").GetInt64();
    Console.WriteLine($"etcd database: {dbSize / 1048576.0:0} MiB\n");

    var rows = new List<Row>();
    var direct = await DirectSaveAsync();
    rows.Add(new("`etcdctl snapshot save` straight from etcd (the source's own speed)", direct, direct.RssKb));

    // Each agent row is the best of two runs (the machine is shared and noisy); the ratio is to the best direct save.
    foreach (var (what, name, storage, mode) in AgentConfigurations())
    {
        var config = await WriteConfigAsync(rig.Config(storage, "bench", mode, rig.Node1), name);
        var runs = new[] { await TimeAsync(binary, ["backup", "--config", config]), await TimeAsync(binary, ["backup", "--config", config]) };
        var again = await DirectSaveAsync();
        direct = again.Seconds < direct.Seconds ? again : direct;
        var best = runs.MinBy(r => r.Seconds)!;
        rows.Add(new(what, best, runs.Max(r => r.RssKb)));
    }

    rows[0] = rows[0] with { Run = direct, PeakRssKb = direct.RssKb };
    var saves = rows.Count; // the direct save and the agent's backups: the rows of the CPU table

    // The manual procedure: snapshot on the node, scp it here, gzip -6, aws s3 cp.
    var ssh = SshOptions();
    var remote = "/var/tmp/cluster-backup-bench-manual.db";
    var manual = await TimeAsync("bash", ["-c",
        $"set -e; ssh {ssh} -p {rig.Node1.Port} {Environment.UserName}@127.0.0.1 " +
        $"'ETCDCTL_API=3 etcdctl --endpoints={rig.Etcd.Endpoint} --cacert={rig.Pki.EtcdCa} --cert={rig.Pki.HealthcheckCert} --key={rig.Pki.HealthcheckKey} snapshot save {remote} >/dev/null'; " +
        $"scp -q {ssh} -P {rig.Node1.Port} {Environment.UserName}@127.0.0.1:{remote} {root}/manual.db; " +
        $"gzip -6 {root}/manual.db; " +
        $"aws --endpoint-url {rig.S3rver.Endpoint} s3 cp --quiet {root}/manual.db.gz s3://{LocalRig.Bucket}/manual/manual.db.gz; " +
        $"rm -f {remote} {root}/manual.db.gz"]);
    rows.Add(new("the manual procedure (save on the node, scp, gzip -6, `aws s3 cp`)", manual, manual.RssKb));

    var compared = rows.Count; // the restore rows have no ratio: a restore does not do what the direct save does
    rows.AddRange(await RestoreAsync());

    Console.WriteLine($"| what | wall | vs `etcdctl snapshot save` alone | peak RSS | CPU (user + sys) |");
    Console.WriteLine("|---|---|---|---|---|");
    foreach (var (i, (what, run, rss)) in rows.Index())
    {
        var ratio = i < compared ? (run.Seconds / direct.Seconds).ToString("0.00", CultureInfo.InvariantCulture) : string.Empty;
        Console.WriteLine($"| {what} | {run.Seconds:0.0} s | {ratio} | {rss / 1024.0:0} MiB | {run.Cpu:0.0} s |");
    }

    // What the machine's cores allow: every process's CPU of the row, spread over all cores, is a
    // floor under its wall time; a row near its floor is bound by CPU, not by waiting.
    Console.WriteLine();
    Console.WriteLine($"| CPU during each row ({Environment.ProcessorCount} cores) | wall | the measured program | etcd | sshd, with what it runs (exec mode: etcdctl, zstd, dd) | s3rver | everything, over {Environment.ProcessorCount} cores (the floor) | idle |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|");
    foreach (var (what, run, _) in rows.Take(saves))
    {
        var cpu = run.Rig;
        var floor = cpu.BusySeconds / Environment.ProcessorCount;
        Console.WriteLine($"| {what} | {run.Seconds:0.0} s | {run.Cpu:0.0} s | {cpu.Of("etcd"):0.0} s | {cpu.Of("sshd"):0.0} s | {cpu.Of("node"):0.0} s | " +
            $"{floor:0.0} s ({floor / direct.Seconds:0.00}) | {cpu.IdleShare:P0} |");
    }
}

// Recovery time: the newest set restored onto a one-member control plane by `restore --yes`, then the same
// steps by hand (aws s3 cp, age -d | zstd -d, scp, etcd stopped, etcdctl snapshot restore, data dir swapped,
// etcd started, healthy). Each starts from a crash-looping member; each must bring back every key. Then
// `restore --yes` of the same set onto three members that all crash-loop (quorum lost).
async Task<List<Row>> RestoreAsync()
{
    var keys = await KeyCountAsync(rig.Etcd.Endpoint);
    await using var target = await EtcdCluster.StartAsync(rig, "restore", 1);
    var member = target.Members[0];
    var config = await WriteConfigAsync(OnS3rver(target.Config("bench")), "restore");
    var listed = JsonSerializer.Deserialize<JsonElement>((await Tools.RunAsync(binary, ["list", "--json", "--config", config])).Output);
    var setId = listed[listed.GetArrayLength() - 1].GetProperty("setId").GetString()!;
    var result = new List<Row>();

    Console.WriteLine($"Restoring set {setId} ({keys} keys) with `restore --yes` ...");
    await member.CorruptAsync();
    var agent = await TimeAsync(binary, ["restore", "--cluster", "bench", "--yes", "--identity", rig.AgeIdentityFile, "--config", config], S3Server.Credentials.ToDictionary());
    await target.WaitHealthyAsync();
    Check(await KeyCountAsync(member.Endpoint), "restore --yes");
    result.Add(new($"`restore --yes` of that set onto a one-member control plane, healthy ({keys:N0} keys)", agent, agent.RssKb));

    Console.WriteLine("The same by hand ...");
    await member.CorruptAsync();
    var work = Directory.CreateDirectory(Path.Combine(root, "manual-restore")).FullName;
    var ssh = SshOptions();
    var node = $"{Environment.UserName}@127.0.0.1";
    var staging = member.StagingDirectory;
    var manifests = member.Node.ManifestsDirectory;
    var restoreFlags = $"--name {member.Name} --initial-cluster {member.Name}=https://127.0.0.1:{member.PeerPort} --initial-advertise-peer-urls https://127.0.0.1:{member.PeerPort}";
    var manual = await TimeAsync("bash", ["-c",
        $"set -e; aws --endpoint-url {rig.S3rver.Endpoint} s3 cp --quiet s3://{LocalRig.Bucket}/backups/bench/{setId}/etcd.db.zst.age {work}/etcd.db.zst.age; " +
        $"age -d -i {rig.AgeIdentityFile} {work}/etcd.db.zst.age | zstd -d -q -o {work}/snapshot.db; " +
        $"scp -q {ssh} -P {member.Node.Port} {work}/snapshot.db {node}:{staging}/snapshot.db; " +
        $"ssh {ssh} -p {member.Node.Port} {node} 'set -e; mv {manifests}/etcd.yaml {staging}/etcd.yaml; " +
        $"while (exec 3<>/dev/tcp/127.0.0.1/{member.ClientPort}) 2>/dev/null; do sleep 0.2; done; " +
        $"ETCDCTL_API=3 etcdctl snapshot restore {staging}/snapshot.db {restoreFlags} --data-dir {staging}/restored >/dev/null 2>&1; " +
        $"mv {member.DataDirectory} {member.DataDirectory}.by-hand; mv {staging}/restored {member.DataDirectory}; mv {staging}/etcd.yaml {manifests}/etcd.yaml; rm -f {staging}/snapshot.db'; " +
        $"until ETCDCTL_API=3 etcdctl --endpoints={member.Endpoint} --cacert={rig.Pki.EtcdCa} --cert={rig.Pki.HealthcheckCert} --key={rig.Pki.HealthcheckKey} endpoint health >/dev/null 2>&1; do sleep 0.3; done; " +
        $"rm -rf {work}"], S3Server.Credentials.ToDictionary());
    Check(await KeyCountAsync(member.Endpoint), "by hand");
    result.Add(new("the same by hand (aws s3 cp, age -d | zstd -d, scp, etcdctl snapshot restore, data dir swapped, healthy)", manual, manual.RssKb));

    // Three members, every one crash-looping (quorum lost): all are restored from the one set.
    await using var three = await EtcdCluster.StartAsync(rig, "restore3", 3);
    var threeConfig = await WriteConfigAsync(OnS3rver(three.Config("bench")), "restore3");
    Console.WriteLine($"Restoring set {setId} onto three members with `restore --yes` ...");
    foreach (var lost in three.Members)
    {
        await lost.CorruptAsync();
    }

    var all = await TimeAsync(binary, ["restore", "--cluster", "bench", "--yes", "--identity", rig.AgeIdentityFile, "--config", threeConfig], S3Server.Credentials.ToDictionary());
    await three.WaitHealthyAsync();
    foreach (var restored in three.Members)
    {
        Check(await KeyCountAsync(restored.Endpoint), $"restore --yes onto {restored.Name}");
    }

    result.Add(new("`restore --yes` of that set onto three members (quorum lost), all healthy", all, all.RssKb));
    return result;

    void Check(long count, string how)
    {
        if (count != keys)
        {
            throw new InvalidOperationException($"after the restore {how}, the member has {count} keys, not {keys}");
        }
    }
}

async Task<long> KeyCountAsync(string endpoint)
{
    var output = await Tools.CheckAsync("etcdctl", [$"--endpoints={endpoint}", $"--cacert={rig.Pki.EtcdCa}", $"--cert={rig.Pki.HealthcheckCert}",
        $"--key={rig.Pki.HealthcheckKey}", "--command-timeout=60s", "get", string.Empty, "--prefix", "--keys-only", "--limit=1", "-w", "json"], etcdctlEnv);
    return JsonSerializer.Deserialize<JsonElement>(output).TryGetProperty("count", out var count) ? count.GetInt64() : 0;
}

// BENCH_HOLD=1: writes the large database's configs, prints them, and keeps the rig up until stdin closes (for profiling);
// with size 0, SmallAsync keeps the small cluster's sets up instead.
async Task HoldAsync()
{
    await EnsureDatabaseAsync();
    foreach (var (_, name, storage, mode) in AgentConfigurations())
    {
        Console.WriteLine($"{name}: {await WriteConfigAsync(rig.Config(storage, "bench", mode, rig.Node1), name)}");
    }

    await HoldUntilStdinClosesAsync();
}

// Prints the S3 credentials the rig's s3rver takes, then waits until stdin closes.
async Task HoldUntilStdinClosesAsync()
{
    Console.WriteLine($"S3 credentials: {string.Join(' ', S3Server.Credentials.Select(c => $"{c.Key}={c.Value}"))}");
    Console.WriteLine("holding; close stdin to stop");
    await Console.In.ReadToEndAsync();
}

// The large database: filled and cached as a snapshot the first time, restored from the cache before the rig started after that.
async Task EnsureDatabaseAsync()
{
    if (sizeMb > 0 && !File.Exists(cache))
    {
        await FillAsync(rig.Etcd, sizeMb * 1024L * 1024);
        Console.WriteLine($"Caching the database as {cache} ...");
        await Etcdctl("snapshot", "save", cache + ".part");
        File.Move(cache + ".part", cache);
    }
}

// A small cluster: a one-member control plane with a few MB, backed up three times; list of 1,000 sets.
async Task SmallAsync()
{
    await using var small = await EtcdCluster.StartAsync(rig, "small", 1);
    var valueFile = Path.Combine(root, "small-value.json");
    for (var i = 0; i < 3; i++)
    {
        await File.WriteAllTextAsync(valueFile, K8sValue(new Random(i), 1_000_000));
        await Tools.CheckAsync("etcdctl", [$"--endpoints={small.Members[0].Endpoint}", $"--cacert={rig.Pki.EtcdCa}", $"--cert={rig.Pki.HealthcheckCert}",
            $"--key={rig.Pki.HealthcheckKey}", "put", $"/registry/configmaps/default/small-{i}"], etcdctlEnv, valueFile);
    }

    // Retention keeps every set, so that the 1,000 sets below are still there after a backup.
    var smallConfig = await WriteConfigAsync(
        OnS3rver(small.Config("small")).Also(c => c["ClusterBackup"]!["Defaults"]!["Retention"] = new JsonObject { ["KeepLast"] = 5000 }), "small");
    var smallRuns = new List<double>();
    for (var i = 0; i < 3; i++)
    {
        smallRuns.Add((await TimeAsync(binary, ["backup", "--config", smallConfig])).Seconds);
        await Task.Delay(1100); // one set per second
    }

    // 1,000 sets: the manifest of the last one, under 997 more set ids, signed with the agent's key as
    // the agent signs (so that list and retention check 1,000 signatures), uploaded with the aws CLI.
    var listed = JsonSerializer.Deserialize<JsonElement>((await Tools.RunAsync(binary, ["list", "--json", "--config", smallConfig])).Output);
    var templateId = listed[listed.GetArrayLength() - 1].GetProperty("setId").GetString()!;
    var manifestText = await File.ReadAllTextAsync(await DownloadManifestAsync(templateId));
    var fakes = Directory.CreateDirectory(Path.Combine(root, "fake-sets")).FullName;
    var start = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    for (var i = listed.GetArrayLength(); i < 1000; i++)
    {
        var id = start.AddHours(i).ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var dir = Directory.CreateDirectory(Path.Combine(fakes, id)).FullName;
        await File.WriteAllTextAsync(Path.Combine(dir, "manifest.json"), manifestText.Replace(templateId, id, StringComparison.Ordinal));
    }

    await Tools.CheckAsync("ssh-keygen", ["-q", "-Y", "sign", "-f", rig.SigningKey, "-n", "cluster-backup",
        .. Directory.GetDirectories(fakes).Select(d => Path.Combine(d, "manifest.json"))]);

    var uploaded = await rig.S3rver.AwsAsync("s3", "cp", "--recursive", "--quiet", fakes, $"s3://{LocalRig.Bucket}/backups/small/");
    if (uploaded.ExitCode != 0)
    {
        throw new InvalidOperationException($"aws s3 cp failed: {uploaded}");
    }

    // The first list reads every manifest and signature from s3rver; the next ones find them in the manifest cache.
    var coldList = (await TimeAsync(binary, ["list", "--config", smallConfig])).Seconds;
    var listRuns = new List<double>();
    for (var i = 0; i < 3; i++)
    {
        listRuns.Add((await TimeAsync(binary, ["list", "--config", smallConfig])).Seconds);
    }

    // A backup stores the 1,001 manifests beside the sets; a workstation without a cache reads them in one GET.
    // Its retention keeps every set, and checks the signature of each (from the local cache the lists filled).
    var keptBackup = (await TimeAsync(binary, ["backup", "--config", smallConfig])).Seconds;
    var freshRuns = new List<double>();
    for (var i = 0; i < 3; i++)
    {
        Directory.Delete(Path.Combine(root, "xdg-cache"), recursive: true);
        freshRuns.Add((await TimeAsync(binary, ["list", "--config", smallConfig])).Seconds);
    }

    Console.WriteLine();
    Console.WriteLine($"| one-node cluster, {small.Members.Count} member, a few MB | best of 3 |");
    Console.WriteLine("|---|---|");
    Console.WriteLine($"| `backup` (process start included) | {smallRuns.Min():0.00} s |");
    Console.WriteLine($"| `list` of 1,000 sets, the first (manifests and signatures read from s3rver; one run) | {coldList:0.00} s |");
    Console.WriteLine($"| `list` of 1,000 sets, again (manifests from the local cache) | {listRuns.Min():0.00} s |");
    Console.WriteLine($"| `backup` with 1,000 sets kept by retention (one run) | {keptBackup:0.00} s |");
    Console.WriteLine($"| `list` of 1,001 sets with no local cache, after a backup stored them (the stored cache) | {freshRuns.Min():0.00} s |");
    if (Environment.GetEnvironmentVariable("BENCH_HOLD") == "1")
    {
        // BENCH_HOLD=1 with size 0: the small cluster's 1,001 sets stay on s3rver (for profiling list).
        Console.WriteLine($"small: {smallConfig} (its local cache: {Path.Combine(root, "xdg-cache")})");
        await HoldUntilStdinClosesAsync();
    }
}

// Many small clusters: the CLI one at a time and in parallel, then two agents on a shared scheduler.
async Task FleetAsync(int count)
{
    await using var postgres = await PostgresServer.StartAsync(root);
    var config = rig.Config("moto", "fleet-000", "tunnel", rig.Node1);
    var template = config["ClusterBackup"]!["Clusters"]![0]!;
    var clusters = new JsonArray();
    for (var i = 0; i < count; i++)
    {
        var cluster = template.DeepClone();
        cluster["Name"] = $"fleet-{i:000}";
        cluster["Schedule"] = "0 0 0 1 1 ? 2099"; // due now (never backed up), then not again
        cluster["ControlPlanes"] = new JsonArray(LocalRig.ControlPlane(i % 2 == 0 ? rig.Node1 : rig.Node2));
        clusters.Add(cluster);
    }

    config["ClusterBackup"]!["Clusters"] = clusters;
    var rows = new List<string>();
    foreach (var (what, concurrent, prefix) in new[] { ("one at a time (MaxConcurrentRuns 1)", 1, "serial"), ("Scheduler:MaxConcurrentRuns 4 (default)", 4, "parallel") })
    {
        config["ClusterBackup"]!["Storage"]!["Prefix"] = prefix;
        config["ClusterBackup"]!["Scheduler"] = new JsonObject { ["MaxConcurrentRuns"] = concurrent };
        var path = await WriteConfigAsync(config, $"fleet-{prefix}");
        Console.WriteLine($"`backup` of {count} clusters, {what} ...");
        var run = await TimeAsync(binary, ["backup", "--config", path], S3Server.Credentials.ToDictionary());
        rows.Add($"| one `backup` of {count} one-node clusters, {what} | {run.Seconds:0.0} s | {run.RssKb / 1024} MiB |");
    }

    config["ClusterBackup"]!["Storage"]!["Prefix"] = "agents";
    var agents = new List<(string Name, ExternalProcess Process, string Config)>();
    var started = Stopwatch.StartNew();
    foreach (var name in new[] { "agent-1", "agent-2" })
    {
        config["ClusterBackup"]!["Scheduler"] = new JsonObject { ["Store"] = "postgres", ["ConnectionString"] = postgres.ConnectionString, ["InstanceName"] = name };
        config["ClusterBackup"]!["Metrics"] = new JsonObject { ["Listen"] = $"127.0.0.1:{Tools.FreePort()}" };
        var path = await WriteConfigAsync(config, $"fleet-{name}");
        agents.Add((name, ExternalProcess.Start(name, binary, ["run", "--config", path], root, S3Server.Credentials), path));
    }

    Console.WriteLine($"Two agents on one PostgreSQL scheduler, {count} clusters due at once ...");
    while (true)
    {
        var keys = await rig.Moto.ObjectKeysAsync(LocalRig.Bucket, "agents/");
        var done = keys.Count(k => k.EndsWith("/manifest.json", StringComparison.Ordinal));
        if (done >= count)
        {
            break;
        }

        if (started.Elapsed > TimeSpan.FromMinutes(20) || agents.Any(a => a.Process.HasExited))
        {
            throw new InvalidOperationException($"only {done} of {count} clusters backed up\n{string.Join('\n', agents.Select(a => a.Process.Tail()))}");
        }

        await Task.Delay(500);
    }

    var wall = started.Elapsed.TotalSeconds;
    var peaks = new List<string>();
    foreach (var (name, process, path) in agents)
    {
        var pid = (await Tools.CheckAsync("pgrep", "-f", $"run --config {path}")).Trim().Split('\n')[0];
        var hwm = File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        var log = process.ReadLog();
        var ran = log.Split("committed set").Length - 1;
        peaks.Add($"{name}: {ran} runs, peak RSS {long.Parse(hwm.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024} MiB");
        await process.TerminateAsync(TimeSpan.FromSeconds(90));
    }

    rows.Add($"| two agents (MaxConcurrentRuns 4 each), {count} clusters due at once, start to the last set | {wall:0.0} s | {string.Join("; ", peaks)} |");
    Console.WriteLine();
    Console.WriteLine("| what | wall | peak RSS |");
    Console.WriteLine("|---|---|---|");
    rows.ForEach(Console.WriteLine);
}

async Task<string> Etcdctl(params string[] arguments) =>
    await Tools.CheckAsync("etcdctl", new[] { "--endpoints=" + rig.Etcd.Endpoint, $"--cacert={rig.Pki.EtcdCa}", $"--cert={rig.Pki.HealthcheckCert}",
        $"--key={rig.Pki.HealthcheckKey}", "--command-timeout=600s" }.Concat(arguments), etcdctlEnv);

async Task<string> DownloadManifestAsync(string id)
{
    var path = Path.Combine(root, "template-manifest.json");
    var result = await rig.S3rver.AwsAsync("s3", "cp", "--quiet", $"s3://{LocalRig.Bucket}/backups/small/{id}/manifest.json", path);
    return result.ExitCode == 0 ? path : throw new InvalidOperationException($"aws s3 cp failed: {result}");
}

// The agent's rows of the large database, and the configurations BENCH_HOLD writes: what, config name, storage, mode.
IEnumerable<(string What, string Name, string Storage, string Mode)> AgentConfigurations() =>
[
    ("`backup`, tunnel mode → S3 (s3rver)", "tunnel-s3", "s3rver", "tunnel"),
    ("`backup`, tunnel mode → filesystem", "tunnel-fs", Path.Combine(root, "store"), "tunnel"),
    ("`backup`, exec mode → S3 (s3rver)", "exec-s3", "s3rver", "exec"),
];

// etcdctl snapshot save straight from etcd, the source's own speed; the file is removed.
async Task<Timed> DirectSaveAsync()
{
    var saved = Path.Combine(root, "direct.db");
    var run = await TimeAsync("etcdctl", ["--endpoints=" + rig.Etcd.Endpoint, $"--cacert={rig.Pki.EtcdCa}", $"--cert={rig.Pki.HealthcheckCert}",
        $"--key={rig.Pki.HealthcheckKey}", "snapshot", "save", saved], etcdctlEnv);
    File.Delete(saved);
    return run;
}

string SshOptions() => $"-i {rig.ClientKey} -o UserKnownHostsFile={rig.KnownHosts} -o BatchMode=yes";

// A cluster's configuration with the rig's s3rver as its store.
JsonObject OnS3rver(JsonObject config) =>
    config.Also(c => c["ClusterBackup"]!["Storage"] = rig.Config("s3rver")["ClusterBackup"]!["Storage"]!.DeepClone());

async Task<string> WriteConfigAsync(JsonObject config, string name)
{
    var path = Path.Combine(root, $"{name}.json");
    await File.WriteAllTextAsync(path, config.ToJsonString());
    return path;
}

async Task<Timed> TimeAsync(string program, IEnumerable<string> arguments, IDictionary<string, string>? environment = null)
{
    var output = Path.Combine(root, "time.out");
    var before = RigCpu.Read(root);
    var result = await Tools.RunAsync("/usr/bin/time", new[] { "-f", "%e %M %U %S", "-o", output, program }.Concat(arguments), environment, timeout: TimeSpan.FromHours(1));
    await RigCpu.WaitForSshSessionsAsync(root);
    var spent = RigCpu.Read(root).Since(before);
    if (result.ExitCode != 0)
    {
        throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed: {result}");
    }

    var fields = (await File.ReadAllTextAsync(output)).Trim().Split('\n')[^1].Split(' ');
    return new Timed(double.Parse(fields[0], CultureInfo.InvariantCulture), long.Parse(fields[1], CultureInfo.InvariantCulture),
        double.Parse(fields[2], CultureInfo.InvariantCulture) + double.Parse(fields[3], CultureInfo.InvariantCulture), spent);
}

// ~100 KB values of k8s-like objects (a list of pods with metadata, spec and status), put by four workers.
static async Task FillAsync(EtcdServer etcd, long bytes)
{
    Console.WriteLine($"Building a database of {bytes / 1048576} MiB of k8s-like values (cached for later runs) ...");
    const int ValueSize = 100_000;
    var count = (int)(bytes / ValueSize);
    var next = -1;
    var stopwatch = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, 4).Select(async worker =>
    {
        var file = Path.Combine(Path.GetTempPath(), $"cluster-backup-bench-value-{worker}");
        int i;
        while ((i = Interlocked.Increment(ref next)) < count)
        {
            await File.WriteAllTextAsync(file, K8sValue(new Random(i), ValueSize));
            await etcd.PutFileAsync($"/registry/pods/bench-{i / 1000}/pod-list-{i}", file);
            if (i % 1000 == 0)
            {
                Console.WriteLine($"  {i} of {count} values, {stopwatch.Elapsed.TotalSeconds:0} s");
            }
        }

        File.Delete(file);
    }));
}

static string K8sValue(Random random, int size)
{
    var text = new StringBuilder("{\"apiVersion\":\"v1\",\"kind\":\"PodList\",\"items\":[");
    var n = 0;
    while (text.Length < size)
    {
        var name = $"web-{random.Next(100000):x5}-{Guid.NewGuid().ToString()[..5]}";
        text.Append(n++ == 0 ? string.Empty : ",").Append(string.Create(CultureInfo.InvariantCulture, $$$$"""
            {"metadata":{"name":"{{{{name}}}}","namespace":"team-{{{{random.Next(40)}}}}","uid":"{{{{Guid.NewGuid()}}}}","resourceVersion":"{{{{random.Next(1_000_000_000)}}}}","creationTimestamp":"2026-{{{{random.Next(1, 12):00}}}}-{{{{random.Next(1, 28):00}}}}T{{{{random.Next(24):00}}}}:{{{{random.Next(60):00}}}}:{{{{random.Next(60):00}}}}Z","labels":{"app":"web","pod-template-hash":"{{{{random.Next(100000):x5}}}}","tier":"frontend"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{{{{Convert.ToBase64String(RandomBytes(random, 96))}}}}"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-{{{{random.Next(100000):x5}}}}","uid":"{{{{Guid.NewGuid()}}}}","controller":true}]},"spec":{"containers":[{"name":"web","image":"registry.example.com/team/web:1.{{{{random.Next(50)}}}}.{{{{random.Next(10)}}}}","ports":[{"containerPort":8080,"protocol":"TCP"}],"resources":{"limits":{"cpu":"500m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},"env":[{"name":"POD_NAME","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],"volumeMounts":[{"name":"kube-api-access-{{{{random.Next(100000):x5}}}}","mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","readOnly":true}]}],"nodeName":"worker-{{{{random.Next(200)}}}}","serviceAccountName":"default","tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]},"status":{"phase":"Running","podIP":"10.{{{{random.Next(256)}}}}.{{{{random.Next(256)}}}}.{{{{random.Next(256)}}}}","hostIP":"10.0.{{{{random.Next(256)}}}}.{{{{random.Next(256)}}}}","startTime":"2026-{{{{random.Next(1, 12):00}}}}-{{{{random.Next(1, 28):00}}}}T{{{{random.Next(24):00}}}}:00:00Z","conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-{{{{random.Next(1, 12):00}}}}-01T00:00:00Z"}],"containerStatuses":[{"name":"web","ready":true,"restartCount":{{{{random.Next(5)}}}},"containerID":"containerd://{{{{Convert.ToHexStringLower(RandomBytes(random, 32))}}}}","imageID":"registry.example.com/team/web@sha256:{{{{Convert.ToHexStringLower(RandomBytes(random, 32))}}}}"}]}}
            """).Trim());
    }

    return text.Append("]}").ToString();
}

static byte[] RandomBytes(Random random, int count)
{
    var bytes = new byte[count];
    random.NextBytes(bytes);
    return bytes;
}

/// <summary>One measured command: wall time, peak RSS and CPU (user + sys) of it, and the CPU of the rig beside it.</summary>
internal sealed record Timed(double Seconds, long RssKb, double Cpu, RigCpu Rig);

/// <summary>A row of the tables: the run it reports, and the peak RSS over all of its runs.</summary>
internal sealed record Row(string What, Timed Run, long PeakRssKb);

/// <summary>
/// CPU seconds of the rig's servers (processes whose command line names the rig's directory, by
/// program name; sshd's sessions are counted when sshd reaps them) and of the whole machine.
/// </summary>
internal sealed record RigCpu(IReadOnlyDictionary<string, double> Programs, double BusySeconds, double IdleSeconds)
{
    private const double TicksPerSecond = 100; // USER_HZ, the unit of /proc's CPU times

    public double IdleShare => IdleSeconds / (BusySeconds + IdleSeconds);

    public double Of(string program) => Programs.GetValueOrDefault(program);

    public static RigCpu Read(string root)
    {
        var programs = new Dictionary<string, double>();
        foreach (var (_, comm, stat) in RigProcesses(root))
        {
            // Fields after the command name: utime stime cutime cstime are the 12th to 15th.
            var ticks = stat[11..15].Sum(f => long.Parse(f, CultureInfo.InvariantCulture));
            programs[comm] = programs.GetValueOrDefault(comm) + ticks / TicksPerSecond;
        }

        // The first line of /proc/stat: user nice system idle iowait irq softirq steal ...
        var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..9].Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var idle = cpu[3] + cpu[4];
        return new RigCpu(programs, (cpu.Sum() - idle) / TicksPerSecond, idle / TicksPerSecond);
    }

    /// <summary>Waits (up to 2 s) until sshd has reaped the sessions of the command just run, so that their CPU is counted in its row.</summary>
    public static async Task WaitForSshSessionsAsync(string root)
    {
        for (var i = 0; i < 20 && RigProcesses(root).Any(p => p.Comm == "sshd" && HasChildren(p.Pid)); i++)
        {
            await Task.Delay(100);
        }
    }

    private static bool HasChildren(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/task/{pid}/children").Trim().Length > 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The processes whose command line names the rig's directory: pid, program name, and the stat fields after the name.</summary>
    private static List<(int Pid, string Comm, string[] Stat)> RigProcesses(string root)
    {
        var found = new List<(int, string, string[])>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                if (!int.TryParse(Path.GetFileName(dir), out var pid) || !File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(root, StringComparison.Ordinal))
                {
                    continue;
                }

                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                found.Add((pid, stat[(stat.IndexOf('(') + 1)..stat.LastIndexOf(')')], stat[(stat.LastIndexOf(')') + 2)..].Split(' ')));
            }
            catch (IOException)
            {
                // the process ended while it was read
            }
        }

        return found;
    }

    public RigCpu Since(RigCpu before) => new(
        Programs.ToDictionary(p => p.Key, p => p.Value - before.Of(p.Key)),
        BusySeconds - before.BusySeconds,
        IdleSeconds - before.IdleSeconds);
}

internal static class JsonObjectExtensions
{
    public static JsonObject Also(this JsonObject value, Action<JsonObject> change)
    {
        change(value);
        return value;
    }
}
