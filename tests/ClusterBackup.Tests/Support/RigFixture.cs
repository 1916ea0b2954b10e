using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Support;

/// <summary>The real servers, started once for every test in the "rig" collection.</summary>
public sealed class RigFixture : IAsyncLifetime
{
    public LocalRig Rig { get; private set; } = null!;

    public async Task InitializeAsync() => Rig = await LocalRig.StartAsync();

    public async Task DisposeAsync()
    {
        await Rig.DisposeAsync();
        if (Environment.GetEnvironmentVariable("KEEP_RIG") is null)
        {
            try
            {
                Directory.Delete(Rig.Root, recursive: true);
            }
            catch (IOException)
            {
                // a server still closing a file; the temp dir is cleaned by the OS
            }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class RigCollection : ICollectionFixture<RigFixture>
{
    public const string Name = "rig";
}
