using System.Formats.Tar;
using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Encryption;
using ClusterBackup.Pipeline;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Etcd;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Verify;

/// <summary>One artifact's verdict: what was checked and, when it failed, what is bad.</summary>
internal sealed record ArtifactVerdict(string Artifact, bool Ok, string Detail);

/// <summary>A set's verification: every artifact, and the restore drill when one ran.</summary>
internal sealed record VerifyReport(CatalogSet Set, IReadOnlyList<ArtifactVerdict> Artifacts, string? Drill, bool DrillOk)
{
    public bool Ok => DrillOk && Artifacts.All(a => a.Ok);
}

/// <summary>
/// Re-reads what a set stored and checks it against its manifest: stored size and SHA-256 always;
/// with the identity, the decrypted and decompressed bytes and etcd's own trailer hash too; with
/// a drill in its <see cref="VerificationScope"/>, a restore drill into a throwaway etcd whose revision and key count must match.
/// </summary>
internal sealed partial class SetVerifier(IBackupStore store, BackupCatalog catalog, VerifyOptions options, TimeProvider time, ILogger<SetVerifier> logger)
{
    /// <summary>A PKI or encryption-config archive larger than this is not searched for encryption configs.</summary>
    private const long MaxArchiveRead = 64L << 20;

    private const long MaxFileRead = 1L << 20;

    public async Task<VerifyReport> VerifyAsync(CatalogSet set, VerificationScope scope, CancellationToken cancellationToken = default)
    {
        var work = Directory.CreateTempSubdirectory("cluster-backup-verify-").FullName;
        try
        {
            var verdicts = new List<ArtifactVerdict>();
            var configurations = new List<(string Source, string Text)>();
            string? snapshotFile = null;
            foreach (var artifact in set.Manifest.Artifacts)
            {
                var decode = scope.Decodes(artifact);
                var plainFile = decode && artifact.Kind == ArtifactKinds.EtcdSnapshot ? Path.Combine(work, "snapshot.db") : null;

                // The drill asks whether the set can give back the Secrets: the encryption configs it holds are read too.
                var copy = decode && scope.Drill && artifact.Kind is ArtifactKinds.EncryptionConfig or ArtifactKinds.Pki && artifact.PlainSize <= MaxArchiveRead
                    ? new MemoryStream()
                    : null;
                var verdict = await VerifyArtifactAsync(set, artifact, decode ? scope.Identities : null, decode, plainFile, copy, cancellationToken);
                verdicts.Add(verdict);
                if (verdict.Ok && plainFile is not null)
                {
                    snapshotFile = plainFile;
                }

                if (verdict.Ok && copy is not null)
                {
                    configurations.AddRange(EncryptionConfigurations(artifact, copy.ToArray()));
                }

                LogArtifact(set.Manifest.Cluster, set.Id.ToString(), artifact.Name, verdict.Ok, verdict.Detail);
            }

            if (!scope.Drill)
            {
                return new VerifyReport(set, verdicts, null, DrillOk: true);
            }

            if (snapshotFile is null)
            {
                return new VerifyReport(set, verdicts, "not run: the etcd snapshot did not check out", DrillOk: false);
            }

            return await DrillAsync(set, verdicts, snapshotFile, configurations, cancellationToken);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private async Task<VerifyReport> DrillAsync(
        CatalogSet set, List<ArtifactVerdict> verdicts, string snapshotFile, List<(string Source, string Text)> configurations, CancellationToken cancellationToken)
    {
        var etcd = set.Manifest.Etcd;
        try
        {
            var result = await new EtcdDrill(options, time).RunAsync(snapshotFile, cancellationToken);
            var restored = $"restored into a throwaway etcd: revision {result.Revision}, {result.KeyCount} keys (manifest: revision {etcd.Revision}, {etcd.KeyCount} keys)";

            // The manifest's facts are read just before the snapshot: a busy cluster may have moved
            // on by the time it was cut, never back.
            var ok = result.Revision > etcd.Revision || (result.Revision == etcd.Revision && result.KeyCount == etcd.KeyCount);
            if (!ok)
            {
                return new VerifyReport(set, verdicts, $"{restored}: the snapshot itself does not hold what was backed up", false);
            }

            var (secretsOk, secrets) = SecretsAtRest.Judge(result.EncryptedSecrets, result.PlainSecrets, configurations);
            return new VerifyReport(set, verdicts, $"{restored}; {secrets}", secretsOk);
        }
        catch (DrillFailedException ex)
        {
            return new VerifyReport(set, verdicts, $"the restore drill failed: {ex.Message}", DrillOk: false);
        }
    }

    private async Task<ArtifactVerdict> VerifyArtifactAsync(
        CatalogSet set, ArtifactRecord artifact, IReadOnlyList<AgeIdentity>? identities, bool decode, string? plainFile, Stream? copy, CancellationToken cancellationToken)
    {
        var key = catalog.ArtifactKey(set.Manifest.Cluster, set.Id, artifact.Name);
        var expected = new ArtifactDigest(artifact.PlainSize, artifact.PlainSha256, artifact.StoredSize, artifact.StoredSha256);
        try
        {
            await using var stored = await store.OpenReadAsync(key, cancellationToken);
            if (!decode)
            {
                using var hash = new HashingStream(stored);
                await hash.CopyToAsync(Stream.Null, cancellationToken);
                return hash.Count == artifact.StoredSize && hash.Sha256Hex() == artifact.StoredSha256
                    ? new ArtifactVerdict(artifact.Name, true, "stored bytes match the manifest (not decrypted: no identity)")
                    : new ArtifactVerdict(artifact.Name, false, $"the stored object is bad: {hash.Count} bytes, SHA-256 {hash.Sha256Hex()}, but the manifest says {artifact.StoredSize} bytes, {artifact.StoredSha256}");
            }

            await using (var output = plainFile is not null ? File.Create(plainFile) : copy ?? Stream.Null)
            {
                await ArtifactPipeline.ExtractAsync(stored, output, expected, identities, cancellationToken);
            }

            if (plainFile is not null)
            {
                await using var snapshot = new SnapshotTrailerCheck(File.OpenRead(plainFile), artifact.Node ?? "?");
                await snapshot.CopyToAsync(Stream.Null, cancellationToken);
            }

            return new ArtifactVerdict(artifact.Name, true, "stored and plain bytes match the manifest" + (plainFile is null ? string.Empty : "; etcd's SHA-256 trailer checks out"));
        }
        catch (StoredObjectNotFoundException)
        {
            return new ArtifactVerdict(artifact.Name, false, $"the stored object is missing ({store.Describe(key)})");
        }
        catch (ArtifactCheckException ex)
        {
            var what = ex.Failure switch
            {
                ArtifactCheckFailure.WrongIdentity => "cannot be decrypted with the given identity",
                ArtifactCheckFailure.PlainMismatch => "the stored object decodes, but not to the bytes that were backed up",
                _ => "the stored object is bad",
            };
            return new ArtifactVerdict(artifact.Name, false, $"{what}: {ex.Message}");
        }
        catch (NodeOperationException ex)
        {
            return new ArtifactVerdict(artifact.Name, false, $"the snapshot itself is bad: {ex.Message}");
        }
    }

    /// <summary>The EncryptionConfiguration files of a decoded archive: the encryption-config archive, or one kept in the PKI dir.</summary>
    private static IEnumerable<(string Source, string Text)> EncryptionConfigurations(ArtifactRecord artifact, byte[] archive)
    {
        var found = new List<(string, string)>();
        var name = SetDownloader.PlainName(artifact)[..^".tar".Length];
        using var reader = new TarReader(new MemoryStream(archive));
        while (NextEntry(reader) is { } entry)
        {
            if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile && entry.DataStream is { } data && entry.Length <= MaxFileRead)
            {
                using var text = new StreamReader(data);
                var content = text.ReadToEnd();
                if (SecretsAtRest.IsEncryptionConfiguration(content))
                {
                    found.Add(($"{name}: {entry.Name.TrimStart('.', '/')}", content));
                }
            }
        }

        return found;

        // The archive checked out against its hashes: a format this reader does not know ends the search, not the verification.
        static TarEntry? NextEntry(TarReader reader)
        {
            try
            {
                return reader.GetNextEntry();
            }
            catch (Exception ex) when (ex is InvalidDataException or FormatException)
            {
                return null;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Verified {Artifact} of set {SetId} of {Cluster}: ok={Ok}, {Detail}")]
    private partial void LogArtifact(string cluster, string setId, string artifact, bool ok, string detail);
}
