using System.Diagnostics;
using System.Reflection;
using ClusterBackup.Catalog;
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
    AgentSettings settings,
    ITransferProgress progress,
    TimeProvider time,
    ILogger<BackupRun> logger)
{
    private readonly ArtifactNames _names = new(Encrypted: !settings.Encryption.Disabled);

    public static readonly string AgentVersion =
        typeof(BackupRun).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public async Task<SetManifest> RunAsync(ClusterSettings cluster, CancellationToken cancellationToken = default)
    {
        var stopwatch = Stopwatch.StartNew();
        var (id, startedAt) = await ReserveSetIdAsync(cluster.Name, cancellationToken);
        LogStarting(cluster.Name, id.ToString());
        if (settings.Encryption.Disabled)
        {
            LogUnencrypted(cluster.Name);
        }

        using var sessions = new NodeSessions(connector);
        var artifacts = new List<ArtifactRecord>();
        try
        {
            var (snapshot, etcd) = await SnapshotEtcdAsync(cluster, id, sessions, cancellationToken);
            artifacts.Add(snapshot);
            var unreachable = await ArchiveNodesAsync(cluster, id, sessions, artifacts, cancellationToken);

            var manifest = new SetManifest
            {
                Cluster = cluster.Name,
                SetId = id.ToString(),
                StartedAt = startedAt,
                CompletedAt = time.GetUtcNow(),
                AgentVersion = AgentVersion,
                Etcd = etcd,
                Artifacts = artifacts,
                UnreachableNodes = unreachable,
            };
            await catalog.WriteManifestAsync(manifest, cancellationToken);
            LogCommitted(cluster.Name, id.ToString(), manifest.StoredBytes, stopwatch.Elapsed.TotalSeconds);
            return manifest;
        }
        catch (Exception ex)
        {
            await RemovePartialSetAsync(cluster.Name, id);
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw ex switch
            {
                BackupFailedException failed => failed,
                NodeOperationException node => new BackupFailedException(cluster.Name, node.Node, node.Step, node.Message, ex),
                StorageException storage => new BackupFailedException(cluster.Name, null, "storage", storage.Message, ex),
                _ => new BackupFailedException(cluster.Name, null, "backup", ex.Message, ex),
            };
        }
    }

    private async Task<(SetId Id, DateTimeOffset StartedAt)> ReserveSetIdAsync(string cluster, CancellationToken cancellationToken)
    {
        // A set id is a start second; a second run within the same second waits for the next one.
        while (true)
        {
            var now = time.GetUtcNow();
            var id = SetId.At(now);
            if (!await catalog.SetExistsAsync(cluster, id, cancellationToken))
            {
                return (id, now);
            }

            await Task.Delay(id.Next().StartedAt - now, time, cancellationToken);
        }
    }

    private async Task<(ArtifactRecord Artifact, EtcdRecord Etcd)> SnapshotEtcdAsync(
        ClusterSettings cluster, SetId id, NodeSessions sessions, CancellationToken cancellationToken)
    {
        var failures = new List<(string Node, string Step, string Reason)>();
        foreach (var node in cluster.ControlPlanes)
        {
            try
            {
                var session = await sessions.GetAsync(node, cancellationToken);
                IEtcdSnapshotSource source = node.Etcd.Mode == EtcdModes.Exec ? exec : tunnel;
                await using var snapshot = await source.OpenAsync(session, cancellationToken);
                var artifact = await StoreAsync(cluster.Name, id, _names.EtcdSnapshot, ArtifactKinds.EtcdSnapshot, node.Name, snapshot.Content, cancellationToken);
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
            catch (Exception ex) when (ex is not StorageException && ex is not OperationCanceledException)
            {
                var step = ex is NodeOperationException n ? n.Step : "etcd snapshot";
                failures.Add((node.Name, step, ex.Message));
                LogNodeFailed(cluster.Name, node.Name, step, ex.Message);
            }
        }

        throw failures is [var only]
            ? new BackupFailedException(cluster.Name, only.Node, only.Step, only.Reason)
            : new BackupFailedException(cluster.Name, null, "etcd snapshot",
                $"no control plane gave a snapshot: {string.Join("; ", failures.Select(f => $"{f.Node}: {f.Step}: {f.Reason}"))}");
    }

    private async Task<List<string>> ArchiveNodesAsync(
        ClusterSettings cluster, SetId id, NodeSessions sessions, List<ArtifactRecord> artifacts, CancellationToken cancellationToken)
    {
        var unreachable = new List<string>();
        foreach (var node in cluster.ControlPlanes)
        {
            NodeSession session;
            try
            {
                session = await sessions.GetAsync(node, cancellationToken);
            }
            catch (NodeOperationException ex) when (ex.Step == "connect")
            {
                // A node that is down must not cost the cluster its backup; the manifest says which.
                unreachable.Add(node.Name);
                LogNodeSkipped(cluster.Name, node.Name, ex.Message);
                continue;
            }

            await using (var pki = NodeArchiveSource.Open(session, node.Paths.Pki, "pki archive", cancellationToken))
            {
                artifacts.Add(await StoreAsync(cluster.Name, id, _names.Pki(node.Name), ArtifactKinds.Pki, node.Name, pki, cancellationToken));
            }

            await using (var manifests = NodeArchiveSource.Open(session, node.Paths.Manifests, "manifests archive", cancellationToken))
            {
                artifacts.Add(await StoreAsync(cluster.Name, id, _names.Manifests(node.Name), ArtifactKinds.Manifests, node.Name, manifests, cancellationToken));
            }
        }

        return unreachable;
    }

    private async Task<ArtifactRecord> StoreAsync(
        string cluster, SetId id, string name, string kind, string node, Stream source, CancellationToken cancellationToken)
    {
        await using var upload = await store.StartUploadAsync(catalog.ArtifactKey(cluster, id, name), cancellationToken);
        var recipients = settings.Encryption.Recipients;
        var digest = await ArtifactPipeline.CopyAsync(source, upload.Content, settings.Compression.Level, recipients, progress, $"{cluster}: {name}", cancellationToken);
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

    private async Task RemovePartialSetAsync(string cluster, SetId id)
    {
        try
        {
            await catalog.DeleteSetAsync(cluster, id, CancellationToken.None);
        }
        catch (StorageException ex)
        {
            LogCleanupFailed(cluster, id.ToString(), ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Encryption is disabled: the backup of {Cluster} is stored unencrypted, with the cluster's CA private keys and every Secret readable by anyone who can read the storage")]
    private partial void LogUnencrypted(string cluster);

    [LoggerMessage(Level = LogLevel.Information, Message = "Backing up {Cluster} as set {SetId}")]
    private partial void LogStarting(string cluster, string setId);

    [LoggerMessage(Level = LogLevel.Information, Message = "etcd snapshot of {Cluster} taken on {Node} at revision {Revision} ({Bytes} bytes)")]
    private partial void LogSnapshotTaken(string cluster, string node, long revision, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: {Node}: {Step} failed: {Reason}")]
    private partial void LogNodeFailed(string cluster, string node, string step, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: {Node} is unreachable, its PKI and manifests are not in this set: {Reason}")]
    private partial void LogNodeSkipped(string cluster, string node, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Committed set {SetId} of {Cluster}: {Bytes} bytes stored in {Seconds:0.0}s")]
    private partial void LogCommitted(string cluster, string setId, long bytes, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove the partial set {SetId} of {Cluster}: {Reason}; prune removes it once stale")]
    private partial void LogCleanupFailed(string cluster, string setId, string reason);
}
