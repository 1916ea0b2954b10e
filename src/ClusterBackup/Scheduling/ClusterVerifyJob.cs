using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Encryption;
using ClusterBackup.Metrics;
using ClusterBackup.Verify;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace ClusterBackup.Scheduling;

/// <summary>
/// The scheduled verification of a cluster's newest set (<c>VerifySchedule</c>): stored hashes
/// always; decrypted content, etcd's trailer and a restore drill when <c>Verify:Deep</c> is set
/// (with <c>Encryption:IdentityFile</c>). Waits for a backup of the same cluster to finish.
/// </summary>
internal sealed partial class ClusterVerifyJob(
    SetVerifier verifier, BackupCatalog catalog, AgentMetrics metrics, RunGate gate, VerifyOptions options, EncryptionSettings encryption, SigningSettings signing,
    TimeProvider time, IHostApplicationLifetime lifetime, ILogger<ClusterVerifyJob> logger) : IJob
{
    public const string Group = "cluster-verify";

    public static JobKey KeyFor(string cluster) => new(cluster, Group);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var name = context.MergedJobDataMap.GetString(ClusterBackupJob.ClusterKey)!;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        try
        {
            using var entered = await gate.EnterAsync(name, stop.Token);
            var scan = await catalog.ScanAsync(name, stop.Token);
            var listed = catalog.Find(name, scan, BackupCatalog.LatestSelector);
            if (scan.LastOrDefault(s => s.State != SetState.Incomplete) is { State: SetState.Damaged } damaged)
            {
                // The newest backup is unusable: the verification gauge must not look fresh.
                LogDamaged(name, damaged.Id.ToString(), catalog.DescribeManifest(name, damaged.Id), damaged.Damage!);
                return;
            }

            // A set that is not signed by a trusted key is a failed verification (unless signing is disabled).
            SignedSet signed;
            try
            {
                signed = await catalog.OpenSignedAsync(listed, signing.ReadPolicy(), stop.Token);
            }
            catch (SetRefusedException refused)
            {
                // The log names the set to restore instead, as restore's refusal does.
                throw await catalog.NamingInsteadAsync(name, scan, signing.ReadPolicy(), refused, stop.Token);
            }

            var set = signed.Set;

            // Verify:Deep decides: without it the scheduled verification checks stored bytes only.
            var identities = options.Deep && encryption.IdentityFile is { } file ? AgeIdentity.LoadFile(file) : null;
            var scope = VerificationScope.For(set.Manifest, identities, options.Deep, out var problem);
            if (problem is not null)
            {
                LogCannotVerify(name, problem);
                return;
            }

            var report = await verifier.VerifyAsync(set, scope, stop.Token);
            if (report.Ok)
            {
                metrics.RecordVerified(name, time.GetUtcNow());
                LogVerified(name, set.Id.ToString());
                return;
            }

            foreach (var bad in report.Artifacts.Where(a => !a.Ok))
            {
                LogArtifactFailed(name, set.Id.ToString(), bad.Artifact, bad.Detail);
            }

            if (!report.DrillOk)
            {
                LogDrillFailed(name, set.Id.ToString(), report.Drill ?? "failed");
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // stopping
        }
        catch (SetRefusedException ex)
        {
            LogRefused(name, ex.Message);
        }
        catch (Exception ex) when (ex is SetNotFoundException or Storage.StorageException or FormatException)
        {
            LogCannotVerify(name, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Verified set {SetId} of {Cluster}")]
    private partial void LogVerified(string cluster, string setId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Verification of set {SetId} of {Cluster} failed: {Artifact}: {Detail}")]
    private partial void LogArtifactFailed(string cluster, string setId, string artifact, string detail);

    [LoggerMessage(Level = LogLevel.Error, Message = "Restore drill of set {SetId} of {Cluster} failed: {Detail}")]
    private partial void LogDrillFailed(string cluster, string setId, string detail);

    [LoggerMessage(Level = LogLevel.Error, Message = "Verification of {Cluster} failed: its newest set {SetId} is damaged: {Location} cannot be read: {Reason}")]
    private partial void LogDamaged(string cluster, string setId, string location, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Verification of {Cluster} failed: its newest set is refused: {Reason}")]
    private partial void LogRefused(string cluster, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot verify {Cluster}: {Reason}")]
    private partial void LogCannotVerify(string cluster, string reason);
}
