namespace ClusterBackup.Certificates;

/// <summary>
/// What a backup learns from one node's PKI and kubeconfig archives as they stream by, with no
/// second read and nothing on disk: the entries, the certificates, and whether the PKI holds
/// together. The private keys it holds for the check are cleared when it is disposed.
/// </summary>
internal sealed class PkiReading(string node) : IDisposable
{
    private readonly Dictionary<string, byte[]> _pki = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _kubeconfigs = new(StringComparer.Ordinal);
    private readonly List<string> _unreadable = [];

    /// <summary>Every entry of the PKI archive (files, links, dirs), relative to its dir.</summary>
    public HashSet<string> PkiEntries { get; } = new(StringComparer.Ordinal);

    /// <summary>The top-level <c>*.conf</c> files of the kubeconfig archive, in its order.</summary>
    public List<string> KubeconfigFiles { get; } = [];

    /// <summary>Every certificate of both archives.</summary>
    public List<CertificateRecord> Certificates { get; } = [];

    /// <summary>Certificates that could not be parsed, one line each.</summary>
    public IReadOnlyList<string> Unreadable => _unreadable;

    public TarEntryObserver ObservePki(Stream archive) => new(
        archive,
        PkiConsistency.IsRead,
        (file, content) =>
        {
            _pki[file] = content;
            if (CertificateReader.IsPkiCertificate(file))
            {
                Certificates.AddRange(CertificateReader.FromPem(node, file, content, _unreadable));
            }
        },
        entry => PkiEntries.Add(entry));

    public TarEntryObserver ObserveKubeconfigs(Stream archive) => new(
        archive,
        CertificateReader.IsKubeconfig,
        (file, content) =>
        {
            KubeconfigFiles.Add(file);
            _kubeconfigs[file] = content;
            Certificates.AddRange(CertificateReader.FromKubeconfig(node, file, content, _unreadable));
        });

    /// <summary>Once both archives streamed: what does not fit (see <see cref="PkiConsistency"/>).</summary>
    public IReadOnlyList<PkiMismatch> Mismatches() => PkiConsistency.Check(node, _pki, _kubeconfigs);

    public void Dispose()
    {
        foreach (var content in _pki.Values.Concat(_kubeconfigs.Values))
        {
            Array.Clear(content);
        }

        _pki.Clear();
        _kubeconfigs.Clear();
    }
}
