using ClusterBackup.Catalog;
using ClusterBackup.Configuration;
using ClusterBackup.Sources;

namespace ClusterBackup.Restore;

/// <summary>What the operator asked for.</summary>
internal sealed record RestoreRequest(IReadOnlyCollection<string> Members, bool Force, bool Pki);

/// <summary>A member as the assessment found it, and where its etcd.yaml flags come from.</summary>
internal sealed record MemberAssessment(string Name, bool Reachable, bool Healthy, string Detail)
{
    /// <summary>From the node's etcd.yaml, or (when the node lost it) from the set's manifests archive; null when neither.</summary>
    public StaticPodFlags? Flags { get; init; }

    /// <summary>The set's copy of etcd.yaml, when the node lost its own: it is staged for the start step.</summary>
    public string? BackedUpEtcdYaml { get; init; }

    /// <summary>Why <see cref="Flags"/> is unknown.</summary>
    public string? FlagsProblem { get; init; }

    /// <summary>
    /// The free space of the filesystems the restore writes to, by the paths of
    /// <see cref="RestoreSpace.PathsToMeasure"/>; null when the node could not say.
    /// </summary>
    public IReadOnlyDictionary<string, FreeSpace>? Space { get; init; }

    /// <summary>What killed restores left (<see cref="RestoreSpace.RestoredPrefix"/>), which the restore removes first.</summary>
    public long LeftoverBytes { get; init; }

    /// <summary>The data dir is a mount point (a volume of its own): it cannot be renamed, so its <c>member/</c> is replaced instead.</summary>
    public bool DataDirIsMountPoint { get; init; }
}

/// <summary>The cluster as found before anything is changed: the set to restore and every member.</summary>
internal sealed record RestoreAssessment(ClusterSettings Cluster, CatalogSet Set, IReadOnlyList<MemberAssessment> Members);

/// <summary>The runbook's phases: a failure while preparing is undone; once started, the restore stands.</summary>
internal enum RestorePhase
{
    Prepare,
    Start,
    Verify,
}

/// <summary>The steps of a restore on a node: a closed set, named through one table.</summary>
internal enum RestoreStepKind
{
    Connect,
    Staging,
    UploadSnapshot,
    UploadPki,
    CopyPkiAside,
    RestorePki,
    UploadKubeconfigs,
    CopyKubeconfigsAside,
    RestoreKubeconfigs,
    UploadEncryptionConfig,
    CopyEncryptionConfigAside,
    RestoreEncryptionConfig,
    StopStaticPods,
    StageBackedUpEtcdYaml,
    RemoveLeftoverRestores,
    SnapshotRestore,
    CheckMemberDir,
    WaitForEtcdToStop,
    MoveDataDirAside,
    PutRestoredDataDirInPlace,
    StartStaticPods,
    RemoveStagedFiles,
    WaitForHealth,
}

internal static class RestoreSteps
{
    /// <summary>The step as messages and the dry run name it: the one table.</summary>
    public static string Describe(this RestoreStepKind step) => step switch
    {
        RestoreStepKind.Connect => "connect",
        RestoreStepKind.Staging => "staging",
        RestoreStepKind.UploadSnapshot => "upload snapshot",
        RestoreStepKind.UploadPki => "upload pki",
        RestoreStepKind.CopyPkiAside => "copy the pki aside",
        RestoreStepKind.RestorePki => "restore pki",
        RestoreStepKind.UploadKubeconfigs => "upload kubeconfigs",
        RestoreStepKind.CopyKubeconfigsAside => "copy the kubeconfigs aside",
        RestoreStepKind.RestoreKubeconfigs => "restore kubeconfigs",
        RestoreStepKind.UploadEncryptionConfig => "upload the encryption config",
        RestoreStepKind.CopyEncryptionConfigAside => "copy the encryption config aside",
        RestoreStepKind.RestoreEncryptionConfig => "restore the encryption config",
        RestoreStepKind.StopStaticPods => "stop static pods",
        RestoreStepKind.StageBackedUpEtcdYaml => "stage the backed-up etcd.yaml",
        RestoreStepKind.RemoveLeftoverRestores => "remove what killed restores left",
        RestoreStepKind.SnapshotRestore => "etcdctl snapshot restore",
        RestoreStepKind.CheckMemberDir => "check the restored member dir",
        RestoreStepKind.WaitForEtcdToStop => "wait for etcd to stop",
        RestoreStepKind.MoveDataDirAside => "move the data dir aside",
        RestoreStepKind.PutRestoredDataDirInPlace => "put the restored data dir in place",
        RestoreStepKind.StartStaticPods => "start static pods",
        RestoreStepKind.RemoveStagedFiles => "remove staged files",
        RestoreStepKind.WaitForHealth => "wait for health",
        _ => throw new ArgumentOutOfRangeException(nameof(step), step, null),
    };
}

/// <summary>A local file a step uploads: the set's snapshot, a node's PKI, kubeconfigs or encryption-config archive, or a node's backed-up etcd.yaml.</summary>
internal enum RestoreFileKind
{
    Snapshot,
    Pki,
    Kubeconfigs,
    EncryptionConfig,
    EtcdYaml,
}

internal sealed record RestoreFile(RestoreFileKind Kind, string? Node = null);

/// <summary>What a step does on its node.</summary>
internal abstract record RestoreAction;

/// <summary>A shell command, built by <see cref="Sources.NodeCommands"/>; run through sudo when the node is so configured.</summary>
internal sealed record RemoteCommand(string Command) : RestoreAction;

/// <summary>A file sent over SFTP as it streams (<see cref="RestoreContent"/>), ending at <see cref="RemotePath"/> with mode 0600.</summary>
internal sealed record Upload(RestoreFile File, string RemotePath) : RestoreAction;

/// <summary>When an undo runs: after its step completed, or as soon as its step was tried (the undo is safe on a partial step).</summary>
internal enum UndoWhen
{
    Completed,
    Attempted,
}

internal sealed record RestoreUndo(string Command, UndoWhen When);

/// <summary>One step of the plan: where, what, and how it is undone if a later one fails while preparing.</summary>
internal sealed record RestoreStep(string Node, RestoreStepKind Kind, RestorePhase Phase, RestoreAction Action, RestoreUndo? Undo = null)
{
    /// <summary>What a failure of this step leaves behind, for the message (phases that are not undone).</summary>
    public string? LeftInPlace { get; init; }
}

/// <summary>A read-only command run once the members are healthy; its output is reported under <see cref="Heading"/>.</summary>
internal sealed record ReportQuery(string Node, string Heading, string Command);

/// <summary>
/// What a restore will do. <see cref="Refusal"/> is set when it will not, and then there are no steps.
/// The steps run in order; <see cref="RestoreExecutor"/> carries them out.
/// </summary>
internal sealed record RestorePlan(
    RestoreAssessment Assessment, IReadOnlyList<string> Members, string Reason, IReadOnlyList<RestoreStep> Steps, IReadOnlyList<ReportQuery> Report, string? Refusal)
{
    public ClusterSettings Cluster => Assessment.Cluster;

    public CatalogSet Set => Assessment.Set;

    public static RestorePlan Refused(RestoreAssessment assessment, string refusal) => new(assessment, [], string.Empty, [], [], refusal);
}

/// <summary>What the restored cluster says of itself, in the plan's report order.</summary>
internal sealed record RestoreReport(IReadOnlyList<(string Heading, string Output)> Sections);
