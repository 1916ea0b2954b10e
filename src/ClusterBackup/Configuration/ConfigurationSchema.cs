using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace ClusterBackup.Configuration;

/// <summary>
/// Checks every key of a configuration section against the options types before binding, so a
/// typo ("Prot") or a value of the wrong type is reported by its full key instead of being ignored
/// or failing the binder one problem at a time.
/// </summary>
internal static class ConfigurationSchema
{
    public static IEnumerable<string> Check(IConfigurationSection section, Type optionsType)
    {
        foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true))
        {
            if (value is null)
            {
                continue; // an intermediate section; its leaves are checked themselves
            }

            var problem = CheckLeaf(key.Split(':'), optionsType, value);
            if (problem is not null)
            {
                yield return $"{section.Path}:{key}: {problem}";
            }
        }
    }

    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = ConfigurationLoader.OptionTypesNotTrimmed)]
    private static string? CheckLeaf(string[] segments, Type type, string value)
    {
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            if (TryGetListElement(type, out var element))
            {
                if (!int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    return "expected a list";
                }

                type = element;
                continue;
            }

            if (IsLeaf(type))
            {
                return "expected a value, not a section";
            }

            var property = type.GetProperty(segment, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null || !property.CanWrite)
            {
                return $"unknown key {Redaction.Quote(segment)} (known: {string.Join(", ", KnownKeys(type))})";
            }

            type = property.PropertyType;
        }

        if (!IsLeaf(type))
        {
            return value.Length == 0 ? null : TryGetListElement(type, out _) ? "expected a list ([…])" : "expected a section, not a value";
        }

        return CheckValue(type, value);
    }

    private static string? CheckValue(Type type, string value)
    {
        if (value.Length == 0)
        {
            return null; // JSON null: the key is unset
        }

        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying == typeof(int) && !int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _))
        {
            return $"{Redaction.Quote(value)} is not a whole number";
        }

        if (underlying == typeof(bool) && !bool.TryParse(value, out _))
        {
            return $"{Redaction.Quote(value)} is not true or false";
        }

        return null;
    }

    private static bool IsLeaf(Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        return underlying.IsPrimitive || underlying == typeof(string);
    }

    private static bool TryGetListElement(Type type, out Type element)
    {
        if (type.IsGenericType && type.GetGenericTypeDefinition() is var definition && (definition == typeof(List<>) || definition == typeof(IReadOnlyList<>)))
        {
            element = type.GetGenericArguments()[0];
            return true;
        }

        element = type;
        return false;
    }

    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = ConfigurationLoader.OptionTypesNotTrimmed)]
    private static IEnumerable<string> KnownKeys(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite)
            .Select(p => p.Name);
}
