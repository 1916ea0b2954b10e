using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using Prometheus;

namespace ClusterBackup.Metrics;

/// <summary>
/// Every series the agent exports (DESIGN.md), in one registry. Labels are cluster names and
/// artifact names from the configuration, never error text. Every series exists from start-up.
/// </summary>
internal sealed class AgentMetrics
{
    private readonly Gauge _lastSuccess;
    private readonly Gauge _lastAttempt;
    private readonly Counter _runs;
    private readonly Gauge _consecutiveFailures;
    private readonly Histogram _duration;
    private readonly Gauge _lastSize;
    private readonly Gauge _sets;
    private readonly Gauge _damaged;
    private readonly Gauge _refused;
    private readonly Counter _pruned;
    private readonly Gauge _lastVerifySuccess;
    private readonly Gauge _etcdRevision;
    private readonly Gauge _scheduleInterval;
    private readonly Gauge _verifyInterval;

    private readonly Gauge _schedulerInstances;
    private readonly Gauge _certificateExpiry;
    private readonly Gauge _pkiMismatches;

    /// <summary>The certificate series each cluster shows: those of its newest set only (bounded cardinality).</summary>
    private readonly Dictionary<string, HashSet<(string Node, string Certificate)>> _certificates = new(StringComparer.Ordinal);

    /// <param name="instance">The agent's name when agents share a scheduler store: a label of build_info only.</param>
    public AgentMetrics(CollectorRegistry registry, string version, string? instance = null)
    {
        Registry = registry;
        var factory = Prometheus.Metrics.WithCustomRegistry(registry);
        _lastSuccess = factory.CreateGauge("cluster_backup_last_success_timestamp_seconds", "Start time of the newest complete backup set (Unix seconds); 0 if there is none.", "cluster");
        _lastAttempt = factory.CreateGauge("cluster_backup_last_attempt_timestamp_seconds", "When the last backup attempt started (Unix seconds).", "cluster");
        _runs = factory.CreateCounter("cluster_backup_runs_total", "Backup runs, by result.", "cluster", "result");
        _consecutiveFailures = factory.CreateGauge("cluster_backup_consecutive_failures", "Backup runs that failed since the last success.", "cluster");
        _duration = factory.CreateHistogram("cluster_backup_duration_seconds", "Duration of backup runs.", new HistogramConfiguration
        {
            LabelNames = ["cluster"],
            Buckets = Histogram.ExponentialBuckets(1, 2, 14), // 1 s .. ~2.3 h
        });
        _lastSize = factory.CreateGauge("cluster_backup_last_size_bytes", "Stored bytes of each artifact of the newest complete set.", "cluster", "artifact");
        _sets = factory.CreateGauge("cluster_backup_sets", "Complete backup sets in storage.", "cluster");
        _damaged = factory.CreateGauge("cluster_backup_damaged_sets", "Sets whose manifest.json cannot be read: never restored, and counted or removed by no retention rule.", "cluster");
        _refused = factory.CreateGauge(
            "cluster_backup_refused_sets",
            "Complete sets newer than the newest set a trusted key signed, whose signature is wrong or untrusted (forged in storage, or signed by a key not trusted): never restored, never reported.",
            "cluster");
        _pruned = factory.CreateCounter("cluster_backup_pruned_sets_total", "Sets removed by retention.", "cluster");
        _lastVerifySuccess = factory.CreateGauge("cluster_backup_last_verify_success_timestamp_seconds", "When a verification of the cluster's newest set last succeeded (Unix seconds).", "cluster");
        _etcdRevision = factory.CreateGauge("cluster_backup_etcd_revision", "etcd revision of the newest complete set.", "cluster");
        _scheduleInterval = factory.CreateGauge("cluster_backup_schedule_interval_seconds", "Period of the cluster's backup schedule; alert thresholds derive from it.", "cluster");
        _verifyInterval = factory.CreateGauge("cluster_backup_verify_interval_seconds", "Period of the cluster's VerifySchedule; 0 when verification is not scheduled.", "cluster");
        if (instance is null)
        {
            factory.CreateGauge("cluster_backup_build_info", "The agent's version.", "version").WithLabels(version).Set(1);
        }
        else
        {
            factory.CreateGauge("cluster_backup_build_info", "The agent's version and name in the shared scheduler store.", "version", "instance").WithLabels(version, instance).Set(1);
        }

        _certificateExpiry = factory.CreateGauge(
            "cluster_backup_certificate_expiry_timestamp_seconds",
            "notAfter of each certificate in the newest set's PKI and kubeconfigs (Unix seconds).",
            "cluster", "node", "certificate");
        _pkiMismatches = factory.CreateGauge(
            "cluster_backup_pki_mismatches",
            "Files of the newest set's PKI and kubeconfigs that do not fit the rest: a key that does not match its certificate, a certificate its CA did not sign, a kubeconfig that does not trust ca.crt.",
            "cluster");
        _schedulerInstances = factory.CreateGauge("cluster_backup_scheduler_instances", "Agents alive in the scheduler store (1 with the memory store); 0 while the store cannot be read.");
        _schedulerInstances.Set(instance is null ? 1 : 0); // a shared store's count comes once it is read
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Creates every per-cluster series at zero, so none is missing before the first run.</summary>
    public void Initialize(IEnumerable<ClusterSettings> clusters, DateTimeOffset now)
    {
        foreach (var cluster in clusters)
        {
            var name = cluster.Name;
            _lastSuccess.WithLabels(name).Set(0);
            _lastAttempt.WithLabels(name).Set(0);
            _runs.WithLabels(name, "success").IncTo(0);
            _runs.WithLabels(name, "failure").IncTo(0);
            _consecutiveFailures.WithLabels(name).Set(0);
            _duration.WithLabels(name);
            _lastSize.WithLabels(name, ArtifactKinds.EtcdSnapshot).Set(0);
            _sets.WithLabels(name).Set(0);
            _damaged.WithLabels(name).Set(0);
            _refused.WithLabels(name).Set(0);
            _pruned.WithLabels(name).IncTo(0);
            _lastVerifySuccess.WithLabels(name).Set(0);
            _etcdRevision.WithLabels(name).Set(0);
            _pkiMismatches.WithLabels(name).Set(0);
            _scheduleInterval.WithLabels(name).Set(cluster.Schedule?.PeriodAfter(now).TotalSeconds ?? 0);
            _verifyInterval.WithLabels(name).Set(cluster.VerifySchedule?.PeriodAfter(now).TotalSeconds ?? 0);
        }
    }

    /// <summary>Sets the freshness gauges from what storage holds, as after a restart.</summary>
    public void Seed(string cluster, int completeSets, int damagedSets, int refusedSets, SetManifest? newest)
    {
        _sets.WithLabels(cluster).Set(completeSets);
        _damaged.WithLabels(cluster).Set(damagedSets);
        _refused.WithLabels(cluster).Set(refusedSets);
        if (newest is not null)
        {
            ShowNewest(cluster, newest);
            if (newest.StartedAt.ToUnixTimeSeconds() >= _lastAttempt.WithLabels(cluster).Value)
            {
                // A set newer than this agent's last attempt: a run elsewhere (another agent) succeeded
                // since, so this agent's failures are no longer "in a row".
                _consecutiveFailures.WithLabels(cluster).Set(0);
            }

            _lastAttempt.WithLabels(cluster).Set(Math.Max(_lastAttempt.WithLabels(cluster).Value, newest.StartedAt.ToUnixTimeSeconds()));
        }
    }

    public void RecordAttempt(string cluster, DateTimeOffset started) => _lastAttempt.WithLabels(cluster).Set(started.ToUnixTimeSeconds());

    public void RecordSuccess(string cluster, SetManifest manifest, TimeSpan duration)
    {
        _runs.WithLabels(cluster, "success").Inc();
        _consecutiveFailures.WithLabels(cluster).Set(0);
        _duration.WithLabels(cluster).Observe(duration.TotalSeconds);
        _sets.WithLabels(cluster).Inc();
        ShowNewest(cluster, manifest);
    }

    public void RecordFailure(string cluster, TimeSpan duration)
    {
        _runs.WithLabels(cluster, "failure").Inc();
        _consecutiveFailures.WithLabels(cluster).Inc();
        _duration.WithLabels(cluster).Observe(duration.TotalSeconds);
    }

    public void RecordPruned(string cluster, int removed, int remaining, int damaged, int refused)
    {
        _pruned.WithLabels(cluster).Inc(removed);
        _sets.WithLabels(cluster).Set(remaining);
        _damaged.WithLabels(cluster).Set(damaged);
        _refused.WithLabels(cluster).Set(refused);
    }

    public void RecordSchedulerInstances(int alive) => _schedulerInstances.Set(alive);

    public void RecordVerified(string cluster, DateTimeOffset time) => _lastVerifySuccess.WithLabels(cluster).Set(time.ToUnixTimeSeconds());

    public async Task WriteAsync(Stream output, CancellationToken cancellationToken) =>
        await Registry.CollectAndExportAsTextAsync(output, cancellationToken);

    private void ShowNewest(string cluster, SetManifest manifest)
    {
        _lastSuccess.WithLabels(cluster).Set(manifest.StartedAt.ToUnixTimeSeconds());
        _etcdRevision.WithLabels(cluster).Set(manifest.Etcd.Revision);
        foreach (var artifact in manifest.Artifacts)
        {
            _lastSize.WithLabels(cluster, SizeLabel(artifact)).Set(artifact.StoredSize);
        }

        ShowCertificates(cluster, manifest);
        _pkiMismatches.WithLabels(cluster).Set(manifest.PkiMismatches.Count);
    }

    /// <summary>Replaces the cluster's certificate series by those of this set (a renewed or removed one does not linger).</summary>
    private void ShowCertificates(string cluster, SetManifest manifest)
    {
        lock (_certificates)
        {
            var now = manifest.Certificates
                .GroupBy(c => (c.Node, c.Name))
                .ToDictionary(g => g.Key, g => g.Min(c => c.NotAfter)); // a chain in one file: its soonest
            if (_certificates.TryGetValue(cluster, out var shown))
            {
                foreach (var gone in shown.Where(s => !now.ContainsKey(s)))
                {
                    _certificateExpiry.RemoveLabelled(cluster, gone.Node, gone.Certificate);
                }
            }

            foreach (var ((node, certificate), notAfter) in now)
            {
                _certificateExpiry.WithLabels(cluster, node, certificate).Set(notAfter.ToUnixTimeSeconds());
            }

            _certificates[cluster] = now.Keys.ToHashSet();
        }
    }

    /// <summary>etcd-snapshot, pki-NODE, manifests-NODE, kubeconfigs-NODE: one series per artifact of a set.</summary>
    public static string SizeLabel(ArtifactRecord artifact) =>
        artifact.Kind == ArtifactKinds.EtcdSnapshot ? ArtifactKinds.EtcdSnapshot : $"{artifact.Kind}-{artifact.Node}";
}
