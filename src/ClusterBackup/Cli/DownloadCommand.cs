using System.CommandLine;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterBackup.Cli;

/// <summary><c>cluster-backup download --cluster NAME [--set ID|latest] --to DIR [--identity FILE]</c>.</summary>
internal static class DownloadCommand
{
    public static Command Create(CliHost host)
    {
        var cluster = new Option<string>("--cluster") { Description = "The cluster whose set to fetch", HelpName = "NAME", Required = true };
        var set = new Option<string>("--set")
        {
            Description = "The set id (as in 'list'), or 'latest'", HelpName = "ID", DefaultValueFactory = _ => BackupCatalog.LatestSelector,
        };
        var to = new Option<string>("--to") { Description = "Directory to write the plain files into (created 0700 if missing)", HelpName = "DIR", Required = true };
        var identity = IdentityOption.Create();
        var allowUnsigned = AllowUnsignedOption.Create();
        var command = new Command("download", """
            Fetch a set, check its signature (manifest.json.sig, by a key in Signing:AllowedSignersFile),
            then check every artifact's stored and plain size and SHA-256 against its manifest,
            decrypt and decompress it, and write plain files (mode 0600): etcd-snapshot.db,
            pki-NODE.tar, manifests-NODE.tar and kubeconfigs-NODE.tar for each control plane (and
            encryption-config-NODE.tar where the set holds kube-apiserver's encryption config), and
            manifest.json.
            All or nothing: if any artifact fails its checks, no file is left in DIR. A DIR whose
            filesystem has less free space than the set's plain files is refused before anything is fetched.
            Exit status: 0 when every file was written, 1 otherwise.

            Example: cluster-backup download --cluster prod-admin --set latest --to /root/restore --identity /root/age-key.txt
            """)
        {
            cluster,
            set,
            to,
            identity,
            allowUnsigned,
        };
        command.SetAction((parse, cancellationToken) => host.RunAsync(parse, async (services, ct) =>
        {
            var settings = services.GetRequiredService<AgentSettings>();
            var selected = CliHost.SelectClusters(settings, [parse.GetValue(cluster)!])[0];
            var identities = IdentityOption.Load(parse.GetValue(identity), settings);
            var catalog = services.GetRequiredService<BackupCatalog>();
            var policy = settings.Signing.ReadPolicy(parse.GetValue(allowUnsigned));
            var found = (await AllowUnsignedOption.FindSignedAsync(host, catalog, selected.Name, parse.GetValue(set)!, policy, ct)).Set;
            var needed = found.Manifest.Artifacts.Sum(a => a.PlainSize);
            if (AvailableBytes(parse.GetValue(to)!) is { } free && free < needed)
            {
                throw new DownloadFailedException(
                    $"{parse.GetValue(to)} has {Formatting.Bytes(free)} free, and the files of set {found.Id} need {Formatting.Bytes(needed)}: choose a directory with room; nothing was written");
            }

            var files = await services.GetRequiredService<SetDownloader>().DownloadAsync(found, parse.GetValue(to)!, identities, ct);
            foreach (var file in files)
            {
                await host.Out.WriteLineAsync($"{file.Path}  {Formatting.Bytes(file.Artifact.PlainSize)}  sha256 {file.Artifact.PlainSha256}");
            }

            await host.Out.WriteLineAsync($"downloaded set {found.Id} of {selected.Name}: {files.Count} files checked against the manifest");
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    /// <summary>The space left on the filesystem a directory is on (or will be on: its nearest existing ancestor's); null when it cannot be read.</summary>
    private static long? AvailableBytes(string directory)
    {
        try
        {
            var existing = new DirectoryInfo(Path.GetFullPath(directory));
            while (!existing.Exists && existing.Parent is { } parent)
            {
                existing = parent;
            }

            return new DriveInfo(existing.FullName).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }
}
