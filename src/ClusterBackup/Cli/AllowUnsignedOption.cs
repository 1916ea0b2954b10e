using System.CommandLine;
using ClusterBackup.Catalog;
using ClusterBackup.Signing;

namespace ClusterBackup.Cli;

/// <summary><c>--allow-unsigned</c>: read sets written before signing existed, with a warning. Signing:Disabled implies it.</summary>
internal static class AllowUnsignedOption
{
    public static Option<bool> Create() => new("--allow-unsigned")
    {
        Description = "Also read sets that have no signature (written before signing existed, or with Signing:Disabled); a warning is printed",
    };

    /// <summary>
    /// Finds the set (an id, or <c>latest</c>) and opens it as <see cref="OpenAsync"/> does. A refusal
    /// names the newest set the policy accepts: the one to use instead.
    /// </summary>
    public static async Task<SignedSet> FindSignedAsync(CliHost host, BackupCatalog catalog, string cluster, string selector, SignaturePolicy policy, CancellationToken cancellationToken)
    {
        var scan = await catalog.ScanAsync(cluster, cancellationToken);
        try
        {
            return await OpenAsync(host, catalog, catalog.Find(cluster, scan, selector), policy, cancellationToken);
        }
        catch (SetRefusedException refused)
        {
            throw await catalog.NamingInsteadAsync(cluster, scan, policy, refused, cancellationToken);
        }
    }

    /// <summary>Checks the set's signature; warns on standard error when it is read unsigned.</summary>
    public static async Task<SignedSet> OpenAsync(CliHost host, BackupCatalog catalog, CatalogSet set, SignaturePolicy policy, CancellationToken cancellationToken)
    {
        var signed = await catalog.OpenSignedAsync(set, policy, cancellationToken);
        if (signed.Unsigned)
        {
            await host.Error.WriteLineAsync($"warning: cluster {set.Manifest.Cluster}: set {set.Id} is not signed: it is read as it is, unauthenticated");
        }

        return signed;
    }
}
