using ClusterBackup.Encryption;
using ClusterBackup.Pipeline;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Pipeline;

/// <summary>An age identity to encrypt for, and what the pipeline extracts from a stored file.</summary>
internal static class StoredArtifacts
{
    /// <summary>A new identity from <c>age-keygen</c>, in <c>key.txt</c> of <paramref name="directory"/>.</summary>
    public static async Task<(AgeIdentity Identity, string KeyFile)> NewIdentityAsync(string directory)
    {
        var keyFile = Path.Combine(directory, "key.txt");
        await Tools.CheckAsync("age-keygen", "-o", keyFile);
        return (AgeIdentity.ParseFile(await File.ReadAllTextAsync(keyFile), keyFile)[0], keyFile);
    }

    /// <summary>The plain bytes <see cref="ArtifactPipeline.ExtractAsync(Stream, Stream, ArtifactDigest, IReadOnlyList{AgeIdentity}?, CancellationToken)"/> gives back, every check made.</summary>
    public static async Task<byte[]> ExtractAsync(string stored, ArtifactDigest digest, AgeIdentity identity)
    {
        using var extracted = new MemoryStream();
        await using (var input = File.OpenRead(stored))
        {
            await ArtifactPipeline.ExtractAsync(input, extracted, digest, [identity]);
        }

        return extracted.ToArray();
    }
}
