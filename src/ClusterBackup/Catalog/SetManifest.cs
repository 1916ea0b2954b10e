using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterBackup.Certificates;

namespace ClusterBackup.Catalog;

/// <summary>
/// <c>manifest.json</c>: written last, so its presence means the set is complete. Plain JSON
/// without secrets; every field a restore or an audit needs to trust the artifacts.
/// </summary>
internal sealed record SetManifest
{
    public const int CurrentFormatVersion = 1;
    public const string FileName = "manifest.json";

    /// <summary>The SSH signature of the manifest's exact bytes, next to it.</summary>
    public const string SignatureFileName = "manifest.json.sig";

    public int FormatVersion { get; init; } = CurrentFormatVersion;

    public required string Cluster { get; init; }

    public required string SetId { get; init; }

    public required DateTimeOffset StartedAt { get; init; }

    public required DateTimeOffset CompletedAt { get; init; }

    public required string AgentVersion { get; init; }

    public required EtcdRecord Etcd { get; init; }

    public required IReadOnlyList<ArtifactRecord> Artifacts { get; init; }

    /// <summary>The fingerprint (<c>SHA256:…</c>) of the key that signed the set; null for an unsigned set.</summary>
    public string? SignedBy { get; init; }

    /// <summary>Control planes whose PKI and manifests could not be archived because they were unreachable.</summary>
    public IReadOnlyList<string> UnreachableNodes { get; init; } = [];

    /// <summary>Every certificate of the PKI and kubeconfig archives, read as they streamed (empty in sets of older versions).</summary>
    public IReadOnlyList<CertificateRecord> Certificates { get; init; } = [];

    /// <summary>What the PKI check found on each node: a key that does not match its certificate, and the like (empty in sets of older versions).</summary>
    public IReadOnlyList<PkiMismatch> PkiMismatches { get; init; } = [];

    public long StoredBytes => Artifacts.Sum(a => a.StoredSize);

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, ManifestJsonContext.Default.SetManifest);

    public static SetManifest FromJson(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, ManifestJsonContext.Default.SetManifest)
        ?? throw new JsonException("manifest is null");
}

internal sealed record EtcdRecord
{
    public required string Node { get; init; }

    public required string Mode { get; init; }

    public string? MemberName { get; init; }

    /// <summary>Hex, as etcdctl prints it.</summary>
    public required string MemberId { get; init; }

    public required string ClusterId { get; init; }

    public required long Revision { get; init; }

    public required long KeyCount { get; init; }

    public required string Version { get; init; }

    public required long DbSizeBytes { get; init; }
}

internal sealed record ArtifactRecord
{
    /// <summary>The object's name within the set (the last segment of its key).</summary>
    public required string Name { get; init; }

    public required string Kind { get; init; }

    public string? Node { get; init; }

    public required long PlainSize { get; init; }

    public required string PlainSha256 { get; init; }

    public required long StoredSize { get; init; }

    public required string StoredSha256 { get; init; }

    public required string Compression { get; init; }

    /// <summary>null when artifacts are stored unencrypted.</summary>
    public EncryptionRecord? Encryption { get; init; }

    /// <summary>For a kubeconfigs or encryption-config archive, the files in it (empty: the node has none); null for other kinds.</summary>
    public IReadOnlyList<string>? Files { get; init; }

    /// <summary>For an encryption-config archive, the file's path on the node (the archive holds it by its name); null for other kinds.</summary>
    public string? Path { get; init; }
}

internal sealed record EncryptionRecord(string Format, IReadOnlyList<string> Recipients)
{
    /// <summary>age v1 with X25519 recipients.</summary>
    public const string AgeFormat = "age";
}

internal static class ArtifactKinds
{
    public const string EtcdSnapshot = "etcd-snapshot";
    public const string Pki = "pki";
    public const string Manifests = "manifests";
    public const string Kubeconfigs = "kubeconfigs";

    /// <summary>kube-apiserver's EncryptionConfiguration (--encryption-provider-config), when it lies outside the PKI dir.</summary>
    public const string EncryptionConfig = "encryption-config";
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    IgnoreReadOnlyProperties = true)]
[JsonSerializable(typeof(SetManifest))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;
