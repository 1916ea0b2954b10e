using ClusterBackup.Catalog;
using ClusterBackup.Encryption;
using ClusterBackup.Pipeline;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Catalog;

/// <summary>A file <see cref="SetDownloader"/> wrote: plain, checked against the manifest.</summary>
internal sealed record DownloadedFile(string Path, ArtifactRecord Artifact);

/// <summary>
/// Fetches a set's artifacts, checks stored and plain sizes and hashes against the manifest,
/// decrypts and decompresses them into plain files (0600). All or nothing: files are written
/// under temporary names and renamed only when every artifact checked out.
/// </summary>
internal sealed partial class SetDownloader(IBackupStore store, BackupCatalog catalog, ITransferProgress progress, ILogger<SetDownloader> logger)
{
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateDirectory = PrivateFile | UnixFileMode.UserExecute;

    /// <summary>The plain file name of an artifact: etcd-snapshot.db, pki-NODE.tar, manifests-NODE.tar, kubeconfigs-NODE.tar, encryption-config-NODE.tar.</summary>
    public static string PlainName(ArtifactRecord artifact) => artifact.Kind switch
    {
        ArtifactKinds.EtcdSnapshot => "etcd-snapshot.db",
        ArtifactKinds.Pki => $"pki-{artifact.Node}.tar",
        ArtifactKinds.Manifests => $"manifests-{artifact.Node}.tar",
        ArtifactKinds.Kubeconfigs => $"kubeconfigs-{artifact.Node}.tar",
        ArtifactKinds.EncryptionConfig => $"encryption-config-{artifact.Node}.tar",
        _ => artifact.Name,
    };

    public async Task<IReadOnlyList<DownloadedFile>> DownloadAsync(
        CatalogSet set, string directory, IReadOnlyList<AgeIdentity>? identities, CancellationToken cancellationToken = default)
    {
        var manifest = set.Manifest;
        RequireIdentities(manifest, identities);
        directory = Path.GetFullPath(directory);
        var targets = manifest.Artifacts.Select(a => (Artifact: a, Path: Path.Combine(directory, PlainName(a)))).ToList();
        var manifestCopy = Path.Combine(directory, SetManifest.FileName);
        var existing = targets.Select(t => t.Path).Append(manifestCopy).Where(File.Exists).ToList();
        if (existing.Count > 0)
        {
            throw new DownloadFailedException($"{string.Join(", ", existing)} already exist: choose an empty directory, nothing was written");
        }

        Directory.CreateDirectory(directory, PrivateDirectory);
        var partials = new List<(string Partial, string Final)>();
        try
        {
            foreach (var (artifact, path) in targets)
            {
                var partial = Path.Combine(directory, $".{Path.GetFileName(path)}.partial");
                partials.Add((partial, path));
                await ExtractAsync(set, artifact, partial, identities, cancellationToken);
                LogArtifactChecked(manifest.Cluster, manifest.SetId, artifact.Name, artifact.PlainSize);
            }

            var manifestPartial = Path.Combine(directory, $".{SetManifest.FileName}.partial");
            partials.Add((manifestPartial, manifestCopy));
            await File.WriteAllBytesAsync(manifestPartial, manifest.ToJson(), cancellationToken);
            File.SetUnixFileMode(manifestPartial, PrivateFile);
        }
        catch
        {
            foreach (var (partial, _) in partials)
            {
                File.Delete(partial);
            }

            throw;
        }

        foreach (var (partial, final) in partials)
        {
            File.Move(partial, final);
        }

        return targets.Select(t => new DownloadedFile(t.Path, t.Artifact)).ToList();
    }

    /// <summary>One small artifact (a node's manifests archive), checked and decrypted into memory.</summary>
    public async Task<byte[]> ReadAsync(CatalogSet set, ArtifactRecord artifact, IReadOnlyList<AgeIdentity>? identities, CancellationToken cancellationToken = default)
    {
        if (artifact.Encryption is not null)
        {
            RequireIdentities(set.Manifest, identities);
        }

        using var output = new MemoryStream();
        await ExtractAsync(set, artifact, output, identities, cancellationToken);
        return output.ToArray();
    }

    private async Task ExtractAsync(CatalogSet set, ArtifactRecord artifact, string partial, IReadOnlyList<AgeIdentity>? identities, CancellationToken cancellationToken)
    {
        await using var output = new FileStream(partial, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = PrivateFile, Options = FileOptions.Asynchronous,
        });
        await ExtractAsync(set, artifact, output, identities, cancellationToken);
        await output.FlushAsync(cancellationToken);
        output.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Streams one artifact, decrypted and decompressed, into <paramref name="output"/> as it downloads;
    /// throws <see cref="DownloadFailedException"/> at the end when it does not match the manifest, so
    /// the consumer must not use what it received until this returns.
    /// </summary>
    public async Task ExtractAsync(CatalogSet set, ArtifactRecord artifact, Stream output, IReadOnlyList<AgeIdentity>? identities, CancellationToken cancellationToken)
    {
        var key = catalog.ArtifactKey(set.Manifest.Cluster, set.Id, artifact.Name);
        var where = $"set {set.Id} of cluster {set.Manifest.Cluster}: artifact {artifact.Name}";
        try
        {
            await using var stored = await store.OpenReadAsync(key, cancellationToken);
            var expected = new ArtifactDigest(artifact.PlainSize, artifact.PlainSha256, artifact.StoredSize, artifact.StoredSha256);
            await ArtifactPipeline.ExtractAsync(stored, output, expected, artifact.Encryption is null ? null : identities, progress, artifact.Name, cancellationToken);
        }
        catch (StoredObjectNotFoundException ex)
        {
            throw new DownloadFailedException($"{where}: missing from storage ({store.Describe(key)}); the set is damaged, use another one", ex);
        }
        catch (ArtifactCheckException ex) when (ex.Failure == ArtifactCheckFailure.WrongIdentity && HoldsListedRecipient(artifact, identities))
        {
            // The identity is one the manifest lists, so it should have opened the header.
            throw new DownloadFailedException(
                $"{where}: its age header does not open with the identity of a recipient the manifest lists: the stored object is damaged or was replaced; use another set", ex);
        }
        catch (ArtifactCheckException ex)
        {
            var advice = ex.Failure switch
            {
                ArtifactCheckFailure.WrongIdentity => "pass the identity whose recipient is in the manifest",
                ArtifactCheckFailure.StoredDamaged => "the stored object is damaged or was replaced; use another set",
                _ => "the stored object decodes, but not to the bytes that were backed up; use another set",
            };
            throw new DownloadFailedException($"{where}: {ex.Message}: {advice}", ex);
        }
    }

    private static bool HoldsListedRecipient(ArtifactRecord artifact, IReadOnlyList<AgeIdentity>? identities) =>
        identities is not null && artifact.Encryption is not null
        && identities.Any(i => artifact.Encryption.Recipients.Contains(i.Recipient.ToString(), StringComparer.Ordinal));

    /// <summary>Refuses, before anything is fetched, an encrypted set without identities.</summary>
    public static void RequireIdentities(SetManifest manifest, IReadOnlyList<AgeIdentity>? identities)
    {
        var encrypted = manifest.Artifacts.FirstOrDefault(a => a.Encryption is not null);
        if (encrypted is not null && (identities is null || identities.Count == 0))
        {
            throw new DownloadFailedException(
                $"set {manifest.SetId} of cluster {manifest.Cluster} is encrypted to {string.Join(", ", encrypted.Encryption!.Recipients)}: " +
                "pass --identity FILE (an age identity file, AGE-SECRET-KEY-1…) or set Encryption:IdentityFile");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Checked {Artifact} of set {SetId} of {Cluster}: {Bytes} bytes")]
    private partial void LogArtifactChecked(string cluster, string setId, string artifact, long bytes);
}

/// <summary>A download could not complete; nothing was left in the target directory.</summary>
internal sealed class DownloadFailedException(string message, Exception? inner = null) : Exception(message, inner);
