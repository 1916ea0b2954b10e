namespace ClusterBackup.Encryption;

/// <summary>The kinds of failure the age specification distinguishes.</summary>
internal enum AgeFailure
{
    /// <summary>No identity matches any recipient stanza: the file was encrypted to other keys.</summary>
    NoMatch,

    /// <summary>The header is not well-formed.</summary>
    Header,

    /// <summary>The header MAC does not verify: the header was altered.</summary>
    Hmac,

    /// <summary>The payload is damaged, truncated or extended.</summary>
    Payload,
}

internal sealed class AgeException(AgeFailure failure, string message) : Exception(message)
{
    public AgeFailure Failure { get; } = failure;
}
