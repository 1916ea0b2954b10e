using System.CommandLine;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Verify;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterBackup.Cli;

/// <summary><c>cluster-backup verify [--cluster NAME] [--set ID|latest|all] [--deep] [--identity FILE]</c>.</summary>
internal static class VerifyCommand
{
    private const string All = "all";

    public static Command Create(CliHost host)
    {
        var cluster = new Option<string?>("--cluster") { Description = "Only this cluster", HelpName = "NAME" };
        var set = new Option<string>("--set")
        {
            Description = "A set id, 'latest' or 'all'", HelpName = "ID", DefaultValueFactory = _ => BackupCatalog.LatestSelector,
        };
        var deep = new Option<bool>("--deep") { Description = "Also restore the snapshot into a throwaway etcd on loopback, compare its revision and key count, and check that the set holds the keys its Secrets are encrypted with" };
        var identity = IdentityOption.Create();
        var allowUnsigned = AllowUnsignedOption.Create();
        var command = new Command("verify", """
            Re-read stored sets and check them against their manifests. First the set's signature:
            manifest.json.sig must be an SSH signature of manifest.json by a trusted key
            (Signing:AllowedSignersFile, or the public half of Signing:KeyFile); a set not signed, signed
            by another key, or whose manifest does not match its signature fails, and nothing of it is
            decrypted (--allow-unsigned reads unsigned sets, with a warning). Always: every artifact's stored
            size and SHA-256. With the identity (--identity or Encryption:IdentityFile): decrypt and
            decompress, compare the plain SHA-256, and check etcd's own SHA-256 trailer. With --deep:
            'etcdctl snapshot restore' into a temp dir, start a throwaway etcd on free loopback ports
            (Verify:Etcd, Verify:Etcdctl), check its revision and key count against the manifest, check
            that every key its Secrets are encrypted at rest with (k8s:enc:PROVIDER:v1:KEY:) is named by
            an encryption config the set holds, and remove it all. Each failure names cluster, set and artifact, and whether the stored object
            or the snapshot itself is bad. A set whose manifest.json cannot be read is DAMAGED and fails
            the verification: with --set all, by its id, or with latest when it is newer than the newest
            readable set.
            Exit status: 0 when every checked set passed, 1 otherwise.

            Examples: cluster-backup verify
                      cluster-backup verify --cluster prod-admin --set all
                      cluster-backup verify --cluster prod-admin --deep --identity /root/age-key.txt
            """)
        {
            cluster,
            set,
            deep,
            identity,
            allowUnsigned,
        };
        command.SetAction((parse, cancellationToken) => host.RunAsync(parse, async (services, ct) =>
        {
            var settings = services.GetRequiredService<AgentSettings>();
            var catalog = services.GetRequiredService<BackupCatalog>();
            var verifier = services.GetRequiredService<SetVerifier>();
            var identities = IdentityOption.Load(parse.GetValue(identity), settings);
            var selector = parse.GetValue(set)!;
            var policy = settings.Signing.ReadPolicy(parse.GetValue(allowUnsigned));
            var name = parse.GetValue(cluster);
            var failed = 0;
            var checkedSets = 0;
            foreach (var selected in CliHost.SelectClusters(settings, name is null ? null : [name]))
            {
                var scan = await catalog.ScanAsync(selected.Name, ct);
                var newestComplete = scan.LastOrDefault(s => s.Complete)?.Id;

                // A damaged set asked for, or newer than the newest readable one, fails the verification.
                var damagedSets = scan.Where(s => s.State == SetState.Damaged && selector switch
                {
                    All => true,
                    BackupCatalog.LatestSelector => newestComplete is not { } newest || s.Id.CompareTo(newest) > 0,
                    _ => false,
                }).ToList();
                var sets = selector == All ? BackupCatalog.CompleteSets(scan)
                    : selector == BackupCatalog.LatestSelector && newestComplete is null && damagedSets.Count > 0 ? []
                    : [catalog.Find(selected.Name, scan, selector)];
                foreach (var damaged in damagedSets)
                {
                    checkedSets++;
                    failed++;
                    await host.Out.WriteLineAsync($"{selected.Name} {damaged.Id}: DAMAGED");
                    await host.Error.WriteLineAsync(
                        $"error: cluster {selected.Name}: set {damaged.Id}: {catalog.DescribeManifest(selected.Name, damaged.Id)} cannot be read: {damaged.Damage}");
                }

                var scopes = new List<VerificationScope>();
                foreach (var candidate in sets)
                {
                    scopes.Add(VerificationScope.For(candidate.Manifest, identities, parse.GetValue(deep), out var problem));
                    if (problem is not null)
                    {
                        throw new UsageException(problem);
                    }
                }

                foreach (var (listed, scope) in sets.Zip(scopes))
                {
                    checkedSets++;
                    SignedSet signed;
                    try
                    {
                        signed = await AllowUnsignedOption.OpenAsync(host, catalog, listed, policy, ct);
                    }
                    catch (SetRefusedException ex)
                    {
                        failed++;
                        await host.Out.WriteLineAsync($"{selected.Name} {listed.Id}: FAILED");
                        var refusal = selector == All ? ex : await catalog.NamingInsteadAsync(selected.Name, scan, policy, ex, ct);
                        await host.Error.WriteLineAsync($"error: {refusal.Message}");
                        continue;
                    }

                    var candidate = signed.Set;
                    var report = await verifier.VerifyAsync(candidate, scope, ct);
                    await host.Out.WriteLineAsync($"{selected.Name} {candidate.Id}: {(report.Ok ? "OK" : "FAILED")}");
                    await host.Out.WriteLineAsync($"  signature: {(signed.Unsigned ? "none: read unsigned, as allowed" : signed.Signature.Describe())}");
                    foreach (var verdict in report.Artifacts)
                    {
                        if (verdict.Ok)
                        {
                            await host.Out.WriteLineAsync($"  {verdict.Artifact}: {verdict.Detail}");
                        }
                        else
                        {
                            await host.Error.WriteLineAsync($"error: cluster {selected.Name}: set {candidate.Id}: artifact {verdict.Artifact}: {verdict.Detail}");
                        }
                    }

                    if (report.Drill is { } drill)
                    {
                        await (report.DrillOk ? host.Out : host.Error).WriteLineAsync(report.DrillOk
                            ? $"  drill: {drill}"
                            : $"error: cluster {selected.Name}: set {candidate.Id}: artifact {ArtifactNameOfSnapshot(candidate)}: {drill}");
                    }

                    failed += report.Ok ? 0 : 1;
                }
            }

            await host.Out.WriteLineAsync($"verified {checkedSets} sets: {checkedSets - failed} good, {failed} bad");
            return failed == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        }, cancellationToken));
        return command;
    }

    private static string ArtifactNameOfSnapshot(CatalogSet set) =>
        set.Manifest.Artifacts.FirstOrDefault(a => a.Kind == ArtifactKinds.EtcdSnapshot)?.Name ?? "etcd snapshot";
}
