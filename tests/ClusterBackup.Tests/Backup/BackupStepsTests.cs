using ClusterBackup.Backup;
using ClusterBackup.Sources;

namespace ClusterBackup.Tests.Backup;

public sealed class BackupStepsTests
{
    [Fact]
    public void Every_step_has_its_own_name_in_messages()
    {
        var names = Enum.GetValues<BackupStep>().Select(s => s.Describe()).ToList();

        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.All(names, n => Assert.Matches("^[a-z][a-z ]+$", n));
    }

    [Fact]
    public void A_node_step_keeps_its_name_as_a_step_of_the_run()
    {
        foreach (var step in Enum.GetValues<NodeStep>())
        {
            Assert.Equal(step.Describe(), BackupSteps.Of(step).Describe());
        }
    }

    [Fact]
    public void A_failure_names_cluster_node_and_step_in_one_line()
    {
        var failure = new BackupFailedException("prod", "cp2", BackupSteps.Of(NodeStep.PkiArchive), "no such directory");

        Assert.Equal("cluster prod: node cp2: pki archive: no such directory", failure.Message);
        Assert.Equal("cluster prod: reserve set id: down", new BackupFailedException("prod", null, BackupStep.ReserveSetId, "down").Message);
    }
}
