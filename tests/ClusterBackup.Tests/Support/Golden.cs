using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Support;

/// <summary>
/// Compares output with a reviewed file under the test's folder. UPDATE_GOLDEN=1 rewrites the files
/// instead; review the diff before committing it.
/// </summary>
internal static class Golden
{
    public static void AssertMatches(string relativePath, string actual)
    {
        var path = Path.Combine(Tools.RepositoryRoot(), "tests", "ClusterBackup.Tests", relativePath);
        actual = actual.ReplaceLineEndings("\n");
        if (Environment.GetEnvironmentVariable("UPDATE_GOLDEN") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, actual);
            return;
        }

        Assert.True(File.Exists(path), $"{path} is missing: run the test with UPDATE_GOLDEN=1 and review it");
        var expected = File.ReadAllText(path);
        if (expected != actual)
        {
            var expectedLines = expected.Split('\n');
            var actualLines = actual.Split('\n');
            var first = Enumerable.Range(0, Math.Max(expectedLines.Length, actualLines.Length))
                .First(i => i >= expectedLines.Length || i >= actualLines.Length || expectedLines[i] != actualLines[i]);
            Assert.Fail($"{relativePath} differs at line {first + 1}:\n  expected: {(first < expectedLines.Length ? expectedLines[first] : "<end>")}\n  actual:   {(first < actualLines.Length ? actualLines[first] : "<end>")}");
        }
    }
}
