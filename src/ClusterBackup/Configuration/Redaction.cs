namespace ClusterBackup.Configuration;

/// <summary>
/// How a configured value appears in a message: as written, unless it looks like a secret (an age
/// identity, a private key, a password in a URL), which is never printed, only named.
/// </summary>
internal static class Redaction
{
    public const string Hidden = "(a secret value, not shown)";

    private static readonly string[] SecretMarkers = ["AGE-SECRET-KEY-", "AGE-PLUGIN-", "PRIVATE KEY", "-----BEGIN"];

    public static bool LooksSecret(string? value) =>
        value is not null && SecretMarkers.Any(m => value.Contains(m, StringComparison.OrdinalIgnoreCase));

    /// <summary><c>'value'</c>, or <see cref="Hidden"/>; a URL's password is replaced by <c>***</c>.</summary>
    public static string Quote(string? value) => LooksSecret(value) ? Hidden : $"'{Url(value)}'";

    /// <summary>A message (an exception's) with a secret-looking value it quotes replaced by <see cref="Hidden"/>.</summary>
    public static string Scrub(string message, string? value) =>
        LooksSecret(value) ? message.Replace(value!, Hidden, StringComparison.Ordinal) : message;

    /// <summary>A URL without the password of its user info; anything else as it is (or hidden).</summary>
    public static string Url(string? value)
    {
        if (value is null)
        {
            return string.Empty;
        }

        if (LooksSecret(value))
        {
            return Hidden;
        }

        var scheme = value.IndexOf("://", StringComparison.Ordinal);
        var at = value.IndexOf('@', StringComparison.Ordinal);
        if (scheme < 0 || at < scheme)
        {
            return value;
        }

        var slash = value.IndexOf('/', scheme + 3);
        if (slash >= 0 && slash < at)
        {
            return value;
        }

        var userInfo = value[(scheme + 3)..at];
        var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? value : $"{value[..(scheme + 3)]}{userInfo[..colon]}:***{value[at..]}";
    }
}
