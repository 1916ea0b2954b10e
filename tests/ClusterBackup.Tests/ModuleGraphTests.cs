using System.Text.RegularExpressions;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests;

/// <summary>
/// The modules (top folders of src/ClusterBackup) depend on each other without a cycle, as read
/// from their <c>using ClusterBackup.*</c> lines and fully qualified names.
/// </summary>
public sealed partial class ModuleGraphTests
{
    [Fact]
    public void No_cycle_ties_the_modules_together()
    {
        var graph = ReadGraph();
        Assert.True(graph.Count >= 10, $"only {graph.Count} modules read");

        var cycle = FindCycle(graph);

        Assert.True(cycle is null, $"modules in a cycle: {string.Join(" -> ", cycle ?? [])}\n{Describe(graph)}");
    }

    [Fact]
    public void Configuration_depends_on_no_module_that_depends_on_it()
    {
        var graph = ReadGraph();

        Assert.Equal(["Encryption", "Signing"], graph["Configuration"].Order());
    }

    private static Dictionary<string, HashSet<string>> ReadGraph()
    {
        var source = Path.Combine(Tools.RepositoryRoot(), "src", "ClusterBackup");
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var directory in Directory.EnumerateDirectories(source).Where(d => Path.GetFileName(d) is not ("bin" or "obj")))
        {
            var module = Path.GetFileName(directory);
            var uses = graph[module] = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in Directory.EnumerateFiles(directory, "*.cs", SearchOption.AllDirectories))
            {
                foreach (Match match in Reference().Matches(File.ReadAllText(file)))
                {
                    var used = match.Groups["module"].Value;
                    if (used != module && Directory.Exists(Path.Combine(source, used)))
                    {
                        uses.Add(used);
                    }
                }
            }
        }

        return graph;
    }

    /// <summary>A cycle as the path of modules that closes it, or null.</summary>
    private static List<string>? FindCycle(Dictionary<string, HashSet<string>> graph)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        var path = new List<string>();

        List<string>? Visit(string module)
        {
            var at = path.IndexOf(module);
            if (at >= 0)
            {
                return [.. path[at..], module];
            }

            if (!done.Add(module))
            {
                return null;
            }

            path.Add(module);
            foreach (var used in graph.GetValueOrDefault(module, []).Order(StringComparer.Ordinal))
            {
                if (Visit(used) is { } cycle)
                {
                    return cycle;
                }
            }

            path.RemoveAt(path.Count - 1);
            return null;
        }

        foreach (var module in graph.Keys.Order(StringComparer.Ordinal))
        {
            path.Clear();
            if (Visit(module) is { } cycle)
            {
                return cycle;
            }
        }

        return null;
    }

    private static string Describe(Dictionary<string, HashSet<string>> graph) =>
        string.Join('\n', graph.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} -> {string.Join(", ", p.Value.Order(StringComparer.Ordinal))}"));

    [GeneratedRegex(@"(?:^using\s+|[^\w.])ClusterBackup\.(?<module>\w+)", RegexOptions.Multiline)]
    private static partial Regex Reference();
}
