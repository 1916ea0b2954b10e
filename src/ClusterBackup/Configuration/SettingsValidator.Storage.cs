namespace ClusterBackup.Configuration;

internal static partial class SettingsValidator
{
    private static IEnumerable<string> ValidateStorage(StorageOptions storage, string where)
    {
        switch (storage.Type)
        {
            case "s3":
                if (string.IsNullOrWhiteSpace(storage.Bucket))
                {
                    yield return $"{where}:Bucket: is required for Type 's3'";
                }

                if (!string.IsNullOrWhiteSpace(storage.ServiceUrl)
                    && (!Uri.TryCreate(storage.ServiceUrl, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https")))
                {
                    yield return $"{where}:ServiceUrl: {Redaction.Quote(storage.ServiceUrl)} is not an http(s) URL";
                }

                if (storage.PartSizeMiB is < MinPartSizeMiB or > MaxPartSizeMiB)
                {
                    yield return $"{where}:PartSizeMiB: {storage.PartSizeMiB} is outside {MinPartSizeMiB}..{MaxPartSizeMiB} (S3's part size limits)";
                }

                if (storage.PartsInFlight is < 1 or > 16)
                {
                    yield return $"{where}:PartsInFlight: {storage.PartsInFlight} is outside 1..16";
                }

                if (storage.CaFile is not null && !File.Exists(storage.CaFile))
                {
                    yield return $"{where}:CaFile: {Redaction.Quote(storage.CaFile)} does not exist";
                }

                foreach (var problem in ValidateS3Protection(storage, where))
                {
                    yield return problem;
                }

                break;
            case "filesystem":
                if (string.IsNullOrWhiteSpace(storage.Path))
                {
                    yield return $"{where}:Path: is required for Type 'filesystem'";
                }

                break;
            default:
                yield return $"{where}:Type: {Redaction.Quote(storage.Type)} is not one of s3, filesystem";
                break;
        }

        if (storage.Prefix.Split('/', StringSplitOptions.RemoveEmptyEntries).Any(s => s is "." or ".."))
        {
            yield return $"{where}:Prefix: {Redaction.Quote(storage.Prefix)} may not contain '.' or '..' segments";
        }
    }

    private static IEnumerable<string> ValidateS3Protection(StorageOptions storage, string where)
    {
        if (storage.ServerSideEncryption is not (null or "" or ServerSideEncryptionTypes.S3 or ServerSideEncryptionTypes.Kms))
        {
            yield return $"{where}:ServerSideEncryption: {Redaction.Quote(storage.ServerSideEncryption)} is not one of {ServerSideEncryptionTypes.S3}, {ServerSideEncryptionTypes.Kms}";
        }

        if (!string.IsNullOrEmpty(storage.KmsKeyId) && storage.ServerSideEncryption != ServerSideEncryptionTypes.Kms)
        {
            yield return $"{where}:KmsKeyId: is set but ServerSideEncryption is not {Redaction.Quote(ServerSideEncryptionTypes.Kms)}";
        }

        var lockMode = storage.ObjectLock.Mode;
        if (lockMode is not (null or "" or "GOVERNANCE" or "COMPLIANCE"))
        {
            yield return $"{where}:ObjectLock:Mode: {Redaction.Quote(lockMode)} is not one of GOVERNANCE, COMPLIANCE";
        }
        else if (!string.IsNullOrEmpty(lockMode) && storage.ObjectLock.Days is < 1 or > 36500)
        {
            yield return $"{where}:ObjectLock:Days: {storage.ObjectLock.Days} is outside 1..36500 (required with a Mode)";
        }
    }
}
