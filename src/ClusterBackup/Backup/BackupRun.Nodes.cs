using System.Text;
using ClusterBackup.Catalog;
using ClusterBackup.Certificates;
using ClusterBackup.Configuration;
using ClusterBackup.Sources;
using ClusterBackup.Sources.Ssh;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Backup;

/// <summary>What a run archives of every control plane, after the snapshot: PKI, kubeconfigs, static-pod manifests, and kube-apiserver's encryption config.</summary>
internal sealed partial class BackupRun
{
    private async Task<(List<string> Unreachable, List<CertificateRecord> Certificates, List<PkiMismatch> Mismatches)> ArchiveNodesAsync(
        ClusterSettings cluster, SetId id, NodeSessions sessions, List<ArtifactRecord> artifacts, List<string> written, CancellationToken cancellationToken)
    {
        var unreachable = new List<string>();
        var certificates = new List<CertificateRecord>();
        var mismatches = new List<PkiMismatch>();
        foreach (var node in cluster.ControlPlanes)
        {
            NodeSession session;
            try
            {
                session = await sessions.GetAsync(node, cancellationToken);
            }
            catch (NodeOperationException ex) when (ex.Step == NodeStep.Connect && !cancellationToken.IsCancellationRequested)
            {
                // A node that is down must not cost the cluster its backup; the manifest says which.
                unreachable.Add(node.Name);
                LogNodeSkipped(cluster.Name, node.Name, ex.Message);
                continue;
            }

            // Certificates and keys are read as the archives stream by (no second read, nothing on disk).
            using var reading = new PkiReading(node.Name);
            await using (var pki = reading.ObservePki(NodeArchiveSource.Open(session, node.Paths.Pki, NodeStep.PkiArchive, cancellationToken)))
            {
                artifacts.Add(await StoreAsync(cluster.Name, id, _names.Pki(node.Name), ArtifactKinds.Pki, node.Name, pki, written, cancellationToken));
            }

            // Without the cluster CA the set could not rebuild a lost control plane: fail as for a missing dir.
            // Missing CA keys are kept with a warning: kubeadm's external-CA mode keeps them off the nodes.
            if (PkiInventory.NotAPki(reading.PkiEntries, node.Paths.Pki) is { } notAPki)
            {
                throw new NodeOperationException(node.Name, NodeStep.PkiArchive, notAPki);
            }

            if (PkiInventory.Missing(reading.PkiEntries) is { Count: > 0 } missing)
            {
                LogPkiIncomplete(cluster.Name, node.Name, node.Paths.Pki, string.Join(", ", missing));
            }

            await using (var kubeconfigs = reading.ObserveKubeconfigs(NodeArchiveSource.OpenKubeconfigs(session, node.Paths.Kubeconfigs, cancellationToken)))
            {
                var artifact = await StoreAsync(cluster.Name, id, _names.Kubeconfigs(node.Name), ArtifactKinds.Kubeconfigs, node.Name, kubeconfigs, written, cancellationToken);
                artifacts.Add(artifact with { Files = reading.KubeconfigFiles });
                if (reading.KubeconfigFiles.Count == 0)
                {
                    LogNoKubeconfigs(cluster.Name, node.Name, node.Paths.Kubeconfigs);
                }
            }

            string? apiServer = null;
            await using (var manifests = new TarEntryObserver(
                NodeArchiveSource.Open(session, node.Paths.Manifests, NodeStep.ManifestsArchive, cancellationToken),
                entry => entry == StaticPodManifest.ApiServer,
                (_, content) => apiServer = Encoding.UTF8.GetString(content)))
            {
                artifacts.Add(await StoreAsync(cluster.Name, id, _names.Manifests(node.Name), ArtifactKinds.Manifests, node.Name, manifests, written, cancellationToken));
            }

            if (apiServer is not null && StaticPodManifest.EncryptionConfig(apiServer) is { } encryptionConfig && !StaticPodManifest.IsWithin(encryptionConfig, node.Paths.Pki))
            {
                artifacts.Add(await StoreEncryptionConfigAsync(cluster.Name, id, node.Name, session, encryptionConfig, written, cancellationToken));
            }

            certificates.AddRange(reading.Certificates);
            foreach (var problem in reading.Unreadable)
            {
                LogCertificateUnreadable(cluster.Name, problem);
            }

            foreach (var mismatch in reading.Mismatches())
            {
                mismatches.Add(mismatch);
                LogPkiMismatch(cluster.Name, node.Name, mismatch.ToString());
            }
        }

        return (unreachable, certificates, mismatches);
    }

    /// <summary>
    /// Before the snapshot: a Paths.Pki that is missing or is not a kubeadm PKI dir fails the run
    /// now, not after the snapshot's upload (and again after each retry's). A node that cannot be
    /// reached, or cannot say, is left to the archive step, which checks the same.
    /// </summary>
    private static async Task CheckPkiDirectoriesAsync(ClusterSettings cluster, NodeSessions sessions, CancellationToken cancellationToken)
    {
        foreach (var node in cluster.ControlPlanes)
        {
            string state;
            try
            {
                var session = await sessions.GetAsync(node, cancellationToken);
                state = (await session.RunAsync(NodeCommands.PkiDirectoryState(node.Paths.Pki, PkiInventory.ClusterCa), cancellationToken)).Output.Trim();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                continue;
            }

            var refusal = state switch
            {
                "missing" => $"{node.Paths.Pki}: no such directory",
                "empty" => PkiInventory.NotAPki(node.Paths.Pki, empty: true),
                "other" => PkiInventory.NotAPki(node.Paths.Pki, empty: false),
                _ => null,
            };
            if (refusal is not null)
            {
                throw new NodeOperationException(node.Name, NodeStep.PkiArchive, refusal);
            }
        }
    }

    /// <summary>
    /// The file kube-apiserver.yaml names in --encryption-provider-config: without its keys the
    /// snapshot's Secrets cannot be read, and a node lost whole takes it along. One missing on the
    /// node is said, and recorded as an empty archive; the set is still kept.
    /// </summary>
    private async Task<ArtifactRecord> StoreEncryptionConfigAsync(
        string cluster, SetId id, string node, NodeSession session, string path, List<string> written, CancellationToken cancellationToken)
    {
        var found = false;
        ArtifactRecord artifact;
        await using (var archive = new TarEntryObserver(
            NodeArchiveSource.OpenFile(session, path, NodeStep.EncryptionConfigArchive, cancellationToken), _ => false, (_, _) => { }, _ => found = true))
        {
            artifact = await StoreAsync(cluster, id, _names.EncryptionConfig(node), ArtifactKinds.EncryptionConfig, node, archive, written, cancellationToken);
        }

        if (!found)
        {
            LogEncryptionConfigMissing(cluster, node, path);
        }

        return artifact with { Path = path, Files = found ? [System.IO.Path.GetFileName(path)] : [] };
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: a certificate was not read for its expiry: {Problem}")]
    private partial void LogCertificateUnreadable(string cluster, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: the PKI of {Node} ({Directory}) lacks {Files}: a restore with --pki puts back only what the set holds (kubeadm's external-CA mode keeps the CA keys elsewhere; back them up there)")]
    private partial void LogPkiIncomplete(string cluster, string node, string directory, string files);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: the PKI of {Node} does not hold together: {Mismatch}; a control plane rebuilt from this set would not start or not be reached (cluster-backup certs lists what the newest set found)")]
    private partial void LogPkiMismatch(string cluster, string node, string mismatch);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Cluster}: node {Node} has no kubeconfigs (*.conf) in {Directory}: recorded as such")]
    private partial void LogNoKubeconfigs(string cluster, string node, string directory);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: {Node} is unreachable, its PKI and manifests are not in this set: {Reason}")]
    private partial void LogNodeSkipped(string cluster, string node, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Cluster}: kube-apiserver.yaml of {Node} names --encryption-provider-config={Path}, which is not a file on the node (mounted from another host path?): this set does not hold the keys its Secrets are encrypted with; keep a copy of that file elsewhere")]
    private partial void LogEncryptionConfigMissing(string cluster, string node, string path);
}
