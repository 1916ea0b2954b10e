using System.Diagnostics;
using System.Reflection;
using ClusterBackup.Catalog;
using ClusterBackup.Certificates;
using ClusterBackup.Configuration;
using ClusterBackup.Pipeline;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Etcd;
using ClusterBackup.Sources.Ssh;
using ClusterBackup.Storage;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Backup;

/// <summary>
/// One backup of one cluster: the only place where sources, the pipeline and storage meet.
/// The etcd snapshot comes from the first control plane that gives one; PKI and static-pod
/// manifests from every reachable control plane; <c>manifest.json</c> is written last. On any
/// failure the set's uploads are aborted or removed and no manifest is written.
/// </summary>
internal sealed partial class BackupRun(
    SshNodeConnector connector,
    TunnelSnapshotSource tunnel,
    ExecSnapshotSource exec,
    IBackupStore store,
    BackupCatalog catalog,
    SetReservations reservations,
    EncryptionSettings encryption,
    SigningSettings signing,
    CompressionOptions compression,
    CertificatesOptions certificatesOptions,
    ITransferProgress progress,
    TimeProvider time,
    ILogger<BackupRun> logger)
{
    private readonly ArtifactNames _names = new(Encrypted: !encryption.Disabled);

    public static readonly string AgentVersion =
        typeof(BackupRun).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>
    /// Runs the backup. Throws <see cref="BackupFailedException"/> naming cluster, node and step for
    /// any failure, at any step, or <see cref="OperationCanceledException"/> when cancelled; either
    /// way the objects this run wrote, and only those, are removed.
    /// </summary>
    public async Task<SetManifest> RunAsync(ClusterSettings cluster, CancellationToken cancellationToken = default)
    {
        var stopwatch = Stopwatch.StartNew();
        SetReservation reservation;
        try
        {
            reservation = await reservations.ReserveAsync(cluster.Name, cancellationToken);
        }
        catch (StorageException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new BackupFailedException(cluster.Name, null, BackupStep.ReserveSetId, ex.Message, ex);
        }

        var id = reservation.Id;
        LogStarting(cluster.Name, id.ToString());
        if (encryption.Disabled)
        {
            LogUnencrypted(cluster.Name);
        }

        // Every key this run wrote, or may have: all that its clean-up may remove.
        var written = new List<string> { reservation.MarkerKey };
        SetManifest manifest;
        using (var sessions = new NodeSessions(connector))
        {
            try
            {
                var artifacts = new List<ArtifactRecord>();
                // The PKI dirs are checked on every node before the snapshot: their handshakes overlap.
                sessions.ConnectAhead(cluster.ControlPlanes, cancellationToken);
                await CheckPkiDirectoriesAsync(cluster, sessions, cancellationToken);
                var (snapshot, etcd) = await SnapshotEtcdAsync(cluster, id, sessions, written, cancellationToken);
                artifacts.Add(snapshot);
                var (unreachable, certificates, mismatches) = await ArchiveNodesAsync(cluster, id, sessions, artifacts, written, cancellationToken);

                manifest = new SetManifest
                {
                    Cluster = cluster.Name,
                    SetId = id.ToString(),
                    StartedAt = reservation.StartedAt,
                    CompletedAt = time.GetUtcNow(),
                    AgentVersion = AgentVersion,
                    Etcd = etcd,
                    Artifacts = artifacts,
                    UnreachableNodes = unreachable,
                    Certificates = CertificateExpiry.Sorted(certificates),
                    PkiMismatches = mismatches,
                    SignedBy = signing.Key?.Public.Fingerprint,
                };
                await EnsureIntactAsync(cluster, id, written, cancellationToken);
                if (signing.Key is not null)
                {
                    written.Add(catalog.SignatureKey(cluster.Name, id));
                }

                await catalog.WriteManifestAsync(manifest, signing.Key, cancellationToken);
            }
            catch (Exception ex)
            {
                // A set committed by another run shares our keys: of those, only our marker is surely ours.
                await RemoveWrittenAsync(cluster.Name, id, ex is SetTakenException ? [reservation.MarkerKey] : written);
                if (cancellationToken.IsCancellationRequested)
                {
                    // Whatever the interrupted step threw (a closed SSH channel, an aborted request).
                    throw ex as OperationCanceledException ?? new OperationCanceledException("the backup was cancelled", ex, cancellationToken);
                }

                throw ex switch
                {
                    BackupFailedException failed => failed,
                    NodeOperationException node => new BackupFailedException(cluster.Name, node.Node, BackupSteps.Of(node.Step), node.Message, ex),
                    StorageException storage => new BackupFailedException(cluster.Name, null, BackupStep.Storage, storage.Message, ex),
                    _ => new BackupFailedException(cluster.Name, null, BackupStep.Backup, $"unexpected {ex.GetType().Name}: {ex.Message}", ex),
                };
            }
        }

        await RemoveMarkerAsync(cluster.Name, id, reservation.MarkerKey);
        LogCommitted(cluster.Name, id.ToString(), manifest.StoredBytes, stopwatch.Elapsed.TotalSeconds);
        var now = time.GetUtcNow();
        foreach (var certificate in manifest.Certificates.Where(c => CertificateExpiry.NeedsAttention(c, now, certificatesOptions.WarnDays)))
        {
            LogCertificateExpiring(cluster.Name, certificate.Node, certificate.Name, certificate.NotAfter, CertificateExpiry.Residual(certificate.NotAfter, now));
        }
        return manifest;
    }

    /// <summary>
    /// Before the commit: the set holds exactly what this run wrote. Catches a set pruned as stale
    /// under a run that took longer than the grace period, and any store that let another run in.
    /// </summary>
    private async Task EnsureIntactAsync(ClusterSettings cluster, SetId id, List<string> written, CancellationToken cancellationToken)
    {
        var stored = await catalog.SetKeysAsync(cluster.Name, id, cancellationToken);
        var missing = written.Except(stored, StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            throw new StorageException(
                $"set {id} lost {string.Join(", ", missing.Select(store.Describe))} while it was being written " +
                $"(removed as stale? the run took longer than Retention.IncompleteGraceHours, {cluster.IncompleteGrace.TotalHours:0}h)");
        }

        // A marker of another run is one that lost this id (it removes its marker, unless it was killed first).
        var foreign = stored.Except(written, StringComparer.Ordinal)
            .Where(key => !key[(key.LastIndexOf('/') + 1)..].StartsWith(SetReservations.MarkerPrefix, StringComparison.Ordinal))
            .ToList();
        if (foreign.Count > 0)
        {
            throw new StorageException($"set {id} holds objects another run wrote ({string.Join(", ", foreign.Select(store.Describe))}): not committed");
        }
    }

    private async Task<(ArtifactRecord Artifact, EtcdRecord Etcd)> SnapshotEtcdAsync(
        ClusterSettings cluster, SetId id, NodeSessions sessions, List<string> written, CancellationToken cancellationToken)
    {
        var failures = new List<(string Node, BackupStep Step, string Reason)>();
        foreach (var node in cluster.ControlPlanes)
        {
            try
            {
                var session = await sessions.GetAsync(node, cancellationToken);
                IEtcdSnapshotSource source = node.Etcd.Mode == EtcdModes.Exec ? exec : tunnel;
                await using var snapshot = await source.OpenAsync(session, cancellationToken);
                var artifact = await StoreAsync(cluster.Name, id, _names.EtcdSnapshot, ArtifactKinds.EtcdSnapshot, node.Name, snapshot.Content, written, cancellationToken, snapshot.CompressedCheck);
                var facts = snapshot.Facts;
                LogSnapshotTaken(cluster.Name, node.Name, facts.Revision, artifact.PlainSize);
                return (artifact, new EtcdRecord
                {
                    Node = facts.Node,
                    Mode = facts.Mode,
                    MemberName = facts.MemberName,
                    MemberId = facts.MemberId.ToString("x", System.Globalization.CultureInfo.InvariantCulture),
                    ClusterId = facts.ClusterId.ToString("x", System.Globalization.CultureInfo.InvariantCulture),
                    Revision = facts.Revision,
                    KeyCount = facts.KeyCount,
                    Version = facts.Version,
                    DbSizeBytes = facts.DbSizeBytes,
                });
            }
            catch (Exception ex) when (ex is not StorageException && !cancellationToken.IsCancellationRequested)
            {
                // The node's side failed (storage errors and cancellation end the run instead).
                var step = ex is NodeOperationException n ? BackupSteps.Of(n.Step) : BackupStep.EtcdSnapshot;
                failures.Add((node.Name, step, ex.Message));
                LogNodeFailed(cluster.Name, node.Name, step.Describe(), ex.Message);
            }
        }

        throw failures is [var only]
            ? new BackupFailedException(cluster.Name, only.Node, only.Step, only.Reason)
            : new BackupFailedException(cluster.Name, null, BackupStep.EtcdSnapshot,
                $"no control plane gave a snapshot: {string.Join("; ", failures.Select(f => $"{f.Node}: {f.Step.Describe()}: {f.Reason}"))}");
    }

    /// <summary>Stores one artifact; <paramref name="compressedCheck"/> when the source sends zstd already (<see cref="EtcdSnapshot.CompressedCheck"/>).</summary>
    private async Task<ArtifactRecord> StoreAsync(
        string cluster, SetId id, string name, string kind, string node, Stream source, List<string> written, CancellationToken cancellationToken,
        Func<Stream, Stream>? compressedCheck = null)
    {
        var key = catalog.ArtifactKey(cluster, id, name);
        await using var upload = await store.StartUploadAsync(key, cancellationToken);
        var recipients = encryption.Recipients;
        var label = $"{cluster}: {name}";
        var digest = compressedCheck is null
            ? await ArtifactPipeline.CopyAsync(source, upload.Content, new CompressionSettings(compression.Level, compression.Workers), recipients, progress, label, cancellationToken)
            : await ArtifactPipeline.CopyCompressedAsync(source, compressedCheck, upload.Content, recipients, progress, label, cancellationToken);
        written.Add(key); // before the commit: a commit whose answer was lost may still have stored it
        await upload.CommitAsync(cancellationToken);
        return new ArtifactRecord
        {
            Name = name,
            Kind = kind,
            Node = node,
            PlainSize = digest.PlainSize,
            PlainSha256 = digest.PlainSha256,
            StoredSize = digest.StoredSize,
            StoredSha256 = digest.StoredSha256,
            Compression = ArtifactPipeline.Compression,
            Encryption = recipients.Count == 0 ? null : new EncryptionRecord(EncryptionRecord.AgeFormat, recipients.Select(r => r.ToString()).ToList()),
        };
    }

    /// <summary>Removes what this run wrote, and nothing else; a failure is logged once and left to prune.</summary>
    private async Task RemoveWrittenAsync(string cluster, SetId id, IReadOnlyList<string> written)
    {
        try
        {
            await catalog.DeleteKeysAsync(written, CancellationToken.None);
        }
        catch (Exception ex)
        {
            LogCleanupFailed(cluster, id.ToString(), ex.Message);
        }
    }

    /// <summary>The set is committed; a marker left behind is harmless, and prune removes it with the set.</summary>
    private async Task RemoveMarkerAsync(string cluster, SetId id, string marker)
    {
        try
        {
            await store.DeleteAsync(marker, CancellationToken.None);
        }
        catch (Exception ex)
        {
            LogMarkerLeft(cluster, id.ToString(), ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Encryption is disabled: the backup of {Cluster} is stored unencrypted, with the cluster's CA private keys and every Secret readable by anyone who can read the storage")]
    private partial void LogUnencrypted(string cluster);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Certificate {Certificate} of {Cluster} on {Node} expires {NotAfter:u} ({Left} left): renew it (kubeadm certs renew), then back up again")]
    private partial void LogCertificateExpiring(string cluster, string node, string certificate, DateTimeOffset notAfter, string left);

    [LoggerMessage(Level = LogLevel.Information, Message = "Backing up {Cluster} as set {SetId}")]
    private partial void LogStarting(string cluster, string setId);

    [LoggerMessage(Level = LogLevel.Information, Message = "etcd snapshot of {Cluster} taken on {Node} at revision {Revision} ({Bytes} bytes)")]
    private partial void LogSnapshotTaken(string cluster, string node, long revision, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: {Node}: {Step} failed: {Reason}")]
    private partial void LogNodeFailed(string cluster, string node, string step, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Committed set {SetId} of {Cluster}: {Bytes} bytes stored in {Seconds:0.0}s")]
    private partial void LogCommitted(string cluster, string setId, long bytes, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove the partial set {SetId} of {Cluster}: {Reason}; prune removes it once stale")]
    private partial void LogCleanupFailed(string cluster, string setId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Set {SetId} of {Cluster} is committed, but its reservation marker could not be removed: {Reason}")]
    private partial void LogMarkerLeft(string cluster, string setId, string reason);
}
