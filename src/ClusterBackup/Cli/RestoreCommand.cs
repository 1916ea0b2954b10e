using System.CommandLine;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Restore;
using ClusterBackup.Sources;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterBackup.Cli;

/// <summary><c>cluster-backup restore --cluster NAME [--set ID|latest] [--member NAME]... [--pki] [--force] [--dry-run] [--yes] [--identity FILE]</c>.</summary>
internal static class RestoreCommand
{
    public const string Name = "restore";

    /// <summary>How long an interrupted restore may take to finish the steps in progress and undo what it did, before the process ends anyway.</summary>
    public static readonly TimeSpan InterruptionTimeout = TimeSpan.FromMinutes(10);

    public static Command Create(CliHost host)
    {
        var cluster = new Option<string>("--cluster") { Description = "The cluster to restore", HelpName = "NAME", Required = true };
        var set = new Option<string>("--set") { Description = "The set id, or 'latest'", HelpName = "ID", DefaultValueFactory = _ => BackupCatalog.LatestSelector };
        var members = new Option<string[]>("--member") { Description = "Restore only this member (repeatable; with quorum, needs --force)", HelpName = "NAME" };
        var pki = new Option<bool>("--pki") { Description = "Also restore each node's PKI archive into Paths:Pki, its kubeconfigs into Paths:Kubeconfigs and kube-apiserver's encryption config where the set holds it, keeping modes" };
        var force = new Option<bool>("--force") { Description = "Restore the --member(s) named although quorum holds" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Assess and print the plan and the exact commands; change nothing" };
        var yes = new Option<bool>("--yes") { Description = "Do not ask for confirmation" };
        var identity = IdentityOption.Create();
        var allowUnsigned = AllowUnsignedOption.Create();
        var command = new Command(Name, """
            Restore etcd (and with --pki the PKI and kubeconfigs) of a cluster's control planes from a set, over SSH,
            following the manual runbook. First the set's signature is checked (as by verify; refused
            sets are never read). Then every member's health is probed and a plan printed:
              not HA: the member is restored;
              HA with quorum: refused (replace the failed members instead), unless --member names
                members and --force is given;
              HA with quorum lost: every member, survivors included, is restored from the same
                snapshot with the full --initial-cluster (a restore starts a new cluster).
            A member whose filesystems (df, on the node) cannot hold what its restore writes (the
            staged snapshot and archives, the restored data dir) refuses the restore, naming each one.
            Per member, every member at once: the decrypted snapshot is staged in Paths:Staging
            (downloaded once, and streamed into every member's upload together), etcd.yaml and
            kube-apiserver.yaml are moved there (the kubelet stops the static pods), 'etcdctl snapshot
            restore' runs (Restore:Etcdctl) with --name, --initial-cluster and --initial-advertise-peer-urls
            from the node's etcd.yaml (or the backed-up one) into {EtcdData}.restored-STAMP (what a killed
            restore left as {EtcdData}.restored-* is removed first), whose member/ is checked; once
            etcd has stopped (nothing listens on its port, no process runs with its data dir) the data
            dir is moved aside to {EtcdData}.before-restore-STAMP (never deleted) and the restored dir
            renamed into its place. Only when every member is prepared are the manifests
            moved back; then health, member list and revision are reported.
            With --pki the node's PKI is first copied aside to {Pki}.before-restore-STAMP, and the
            kubeconfigs the set holds to {Staging}/kubeconfigs.before-restore-STAMP (the encryption
            config, to {Staging}/encryption-config.before-restore-STAMP); a set whose PKI
            check found a mismatch (see certs) is restored all the same, with a warning naming it.
            A failing step stops the other members after the step they are in, then undoes every
            step done so far, in reverse, on every member touched, and names node and step.
            Interrupted (Ctrl-C, SIGTERM) while preparing, every member stops after the step in
            progress (a command is never cut off), the steps done are undone the same way, and the
            error says so; interrupted once a member has started, it says what stays in place.
            --dry-run prints the plan's steps, exactly as they would run.
            Without --yes it asks first, and refuses when standard input is not a terminal.
            The SSH user is root, or a user with passwordless sudo and Ssh:Sudo set.
            Exit status: 0 restored, 1 refused or failed, 78 configuration error.

            Example: cluster-backup restore --cluster prod-admin --set latest --dry-run --identity /root/age-key.txt
            """)
        {
            cluster, set, members, pki, force, dryRun, yes, identity, allowUnsigned,
        };
        command.SetAction((parse, cancellationToken) => host.RunAsync(parse, async (services, ct) =>
        {
            var settings = services.GetRequiredService<AgentSettings>();
            var selected = CliHost.SelectClusters(settings, [parse.GetValue(cluster)!])[0];
            var identities = IdentityOption.Load(parse.GetValue(identity), settings);
            var options = new RestoreRequest(parse.GetValue(members) ?? [], parse.GetValue(force), parse.GetValue(pki));
            var restore = services.GetRequiredService<ClusterRestore>();
            var catalog = services.GetRequiredService<BackupCatalog>();
            var policy = settings.Signing.ReadPolicy(parse.GetValue(allowUnsigned));
            restore.ConnectAhead(selected, ct);
            var signed = await AllowUnsignedOption.FindSignedAsync(host, catalog, selected.Name, parse.GetValue(set)!, policy, ct);
            var assessment = await restore.AssessAsync(selected, signed.Set, identities, ct);
            var plan = RestorePlanner.Plan(assessment, options, restore.Stamp);
            await PrintAssessmentAsync(host.Out, assessment);
            if (plan.Refusal is { } refusal)
            {
                throw new RestoreRefusedException($"cluster {selected.Name}: restore refused: {refusal}");
            }

            await host.Out.WriteLineAsync($"plan: {plan.Reason}");
            if (options.Pki)
            {
                // Not a refusal: on the night the newest set may still be the best there is.
                foreach (var mismatch in assessment.Set.Manifest.PkiMismatches.Where(m => plan.Members.Contains(m.Node)))
                {
                    await host.Error.WriteLineAsync(
                        $"warning: set {plan.Set.Id}: the PKI of {mismatch.Node} did not hold together when it was backed up: {mismatch}; --pki puts it back as it was (an older set may hold a whole one: cluster-backup certs, list --json)");
                }
            }

            if (parse.GetValue(dryRun))
            {
                await PrintStepsAsync(host.Out, plan);
                await host.Out.WriteLineAsync("dry run: nothing was changed");
                return ExitCodes.Ok;
            }

            if (!parse.GetValue(yes) && !Ask(host, $"Restore {string.Join(", ", plan.Members)} of cluster {selected.Name} from set {plan.Set.Id}? Their current etcd data is moved aside."))
            {
                throw new RestoreRefusedException("restore not confirmed; nothing was changed");
            }

            await using var interrupted = ct.Register(() => host.Error.WriteLine(
                "interrupted: each member stops after the step in progress, then what was done is undone; this can take as long as that step"));
            var report = await restore.ExecuteAsync(plan, identities, ct);
            foreach (var (heading, output) in report.Sections)
            {
                await host.Out.WriteLineAsync($"{heading}\n{output}");
            }

            await host.Out.WriteLineAsync($"cluster {selected.Name} restored");
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    private static async Task PrintAssessmentAsync(TextWriter output, RestoreAssessment assessment)
    {
        var manifest = assessment.Set.Manifest;
        await output.WriteLineAsync($"cluster {assessment.Cluster.Name}, set {assessment.Set.Id} (etcd revision {manifest.Etcd.Revision}, {manifest.Etcd.KeyCount} keys):");
        foreach (var member in assessment.Members)
        {
            await output.WriteLineAsync($"  {member.Name}: {(member.Healthy ? "healthy" : "NOT healthy")} ({member.Detail})");
        }
    }

    /// <summary>Every step of the plan as it would run on its node.</summary>
    private static async Task PrintStepsAsync(TextWriter output, RestorePlan plan)
    {
        await output.WriteLineAsync("dry run: the commands, per member (the members are prepared at the same time, and start once all are prepared); nothing is changed:");
        foreach (var step in plan.Steps)
        {
            var node = plan.Cluster.ControlPlanes.First(cp => cp.Name == step.Node);
            var what = step.Action switch
            {
                RemoteCommand command => NodeCommands.AsRunOn(node, command.Command),
                Upload upload => $"upload over SFTP to {upload.RemotePath}",
                _ => step.Action.ToString(),
            };
            await output.WriteLineAsync($"  [{step.Node}] {step.Kind.Describe()}: {what}");
        }
    }

    private static bool Ask(CliHost host, string question)
    {
        if (Console.IsInputRedirected)
        {
            throw new RestoreRefusedException("refusing to restore without --yes: standard input is not a terminal to confirm on; nothing was changed");
        }

        host.Out.Write($"{question} Type 'yes' to go on: ");
        return Console.ReadLine()?.Trim() == "yes";
    }
}
