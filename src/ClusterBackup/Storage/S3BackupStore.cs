using System.Net;
using System.Runtime.CompilerServices;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using ClusterBackup.Configuration;
using ClusterBackup.Streams;
using Microsoft.Extensions.Logging;

namespace ClusterBackup.Storage;

/// <summary>An S3 bucket (AWS or any S3-compatible server) as the store.</summary>
internal sealed partial class S3BackupStore(IAmazonS3 client, StorageOptions options, TimeProvider time, ILogger<S3BackupStore> logger)
    : IBackupStore, IIncompleteUploads
{
    private readonly IAmazonS3 _client = client;
    private readonly string _bucket = options.Bucket!;
    private readonly bool _chunkedEncoding = options.ChunkedEncoding ?? string.IsNullOrWhiteSpace(options.ServiceUrl);
    private readonly int _partSize = options.PartSizeMiB * 1024 * 1024;
    private readonly int _partsInFlight = options.PartsInFlight;

    /// <summary>Objects per listing page; S3's maximum. Tests lower it to exercise paging.</summary>
    public int ListPageSize { get; init; } = 1000;

    public string Describe(string key) => $"s3://{_bucket}/{key}";

    public Task<IObjectUpload> StartUploadAsync(string key, CancellationToken cancellationToken = default) =>
        Task.FromResult<IObjectUpload>(new S3ObjectUpload(this, key, cancellationToken));

    public async Task<bool> CreateExclusiveAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        var put = new PutObjectRequest
        {
            BucketName = _bucket,
            Key = key,
            InputStream = new MemoryStream(content.ToArray(), writable: false),
            MD5Digest = Md5(content.Span),
            UseChunkEncoding = _chunkedEncoding,
            AutoCloseStream = true,
            IfNoneMatch = "*",
        };
        Protect(put);
        try
        {
            await _client.PutObjectAsync(put, cancellationToken);
            return true;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict && ex.ErrorCode != "NoSuchBucket")
        {
            return false; // 412: the key exists; 409: another conditional write of it is in flight
        }
        catch (Exception ex) when (IsServiceError(ex))
        {
            throw Translate(ex, "upload", key);
        }
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        try
        {
            var response = await _client.GetObjectAsync(_bucket, key, cancellationToken);
            return response.ResponseStream;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound && ex.ErrorCode != "NoSuchBucket")
        {
            throw new StoredObjectNotFoundException(Describe(key), ex);
        }
        catch (Exception ex) when (IsServiceError(ex))
        {
            throw Translate(ex, "read", key);
        }
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = prefix, MaxKeys = ListPageSize };
        do
        {
            ListObjectsV2Response page;
            try
            {
                page = await _client.ListObjectsV2Async(request, cancellationToken);
            }
            catch (Exception ex) when (IsServiceError(ex))
            {
                throw Translate(ex, "list", prefix);
            }

            foreach (var item in page.S3Objects ?? [])
            {
                yield return new StoredObject(item.Key, item.Size ?? 0, item.LastModified ?? DateTimeOffset.MinValue.UtcDateTime, item.ETag);
            }

            request.ContinuationToken = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (request.ContinuationToken is not null);
    }

    public async IAsyncEnumerable<IncompleteUpload> ListIncompleteUploadsAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = new ListMultipartUploadsRequest { BucketName = _bucket, Prefix = prefix };
        while (true)
        {
            ListMultipartUploadsResponse page;
            try
            {
                page = await _client.ListMultipartUploadsAsync(request, cancellationToken);
            }
            catch (Exception ex) when (IsServiceError(ex))
            {
                throw Translate(ex, "list the open multipart uploads under", prefix);
            }

            foreach (var upload in page.MultipartUploads ?? [])
            {
                yield return new IncompleteUpload(upload.Key, upload.UploadId, upload.Initiated ?? DateTime.MinValue);
            }

            if (page.IsTruncated != true)
            {
                yield break;
            }

            request.KeyMarker = page.NextKeyMarker;
            request.UploadIdMarker = page.NextUploadIdMarker;
        }
    }

    public async Task AbortAsync(IncompleteUpload upload, CancellationToken cancellationToken = default)
    {
        try
        {
            await _client.AbortMultipartUploadAsync(_bucket, upload.Key, upload.UploadId, cancellationToken);
        }
        catch (Exception ex) when (IsServiceError(ex))
        {
            throw Translate(ex, "abort the multipart upload of", upload.Key);
        }
    }

    public async Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        try
        {
            await _client.DeleteObjectAsync(_bucket, key, cancellationToken);
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound && ex.ErrorCode != "NoSuchBucket")
        {
            // already gone
        }
        catch (Exception ex) when (IsServiceError(ex))
        {
            throw Translate(ex, "delete", key);
        }
    }

    /// <summary>Content-MD5: the server rejects a part damaged in transit (and Object Lock requires it).</summary>
    private static string Md5(ReadOnlySpan<byte> data) => Convert.ToBase64String(System.Security.Cryptography.MD5.HashData(data));

    private void Protect(PutObjectRequest request)
    {
        request.ServerSideEncryptionMethod = SseMethod();
        request.ServerSideEncryptionKeyManagementServiceKeyId = SseKmsKeyId();
        request.ObjectLockMode = LockMode();
        request.ObjectLockRetainUntilDate = RetainUntil();
    }

    private DateTime? Protect(InitiateMultipartUploadRequest request)
    {
        request.ServerSideEncryptionMethod = SseMethod();
        request.ServerSideEncryptionKeyManagementServiceKeyId = SseKmsKeyId();
        request.ObjectLockMode = LockMode();
        request.ObjectLockRetainUntilDate = RetainUntil();
        return request.ObjectLockRetainUntilDate;
    }

    /// <summary>
    /// Sets the retention on a completed multipart object again, explicitly: some S3-compatible
    /// servers ignore the lock headers of CreateMultipartUpload. The date is the one requested at
    /// the start, so this never shortens a retention (which COMPLIANCE mode forbids).
    /// </summary>
    private async Task RetainAsync(string key, string? versionId, DateTime? retainUntil, CancellationToken cancellationToken)
    {
        if (retainUntil is null)
        {
            return;
        }

        await _client.PutObjectRetentionAsync(new PutObjectRetentionRequest
        {
            BucketName = _bucket,
            Key = key,
            VersionId = versionId,
            Retention = new ObjectLockRetention { Mode = ObjectLockRetentionMode.FindValue(options.ObjectLock.Mode), RetainUntilDate = retainUntil },
        }, cancellationToken);
    }

    private ServerSideEncryptionMethod? SseMethod() => options.ServerSideEncryption switch
    {
        ServerSideEncryptionTypes.S3 => ServerSideEncryptionMethod.AES256,
        ServerSideEncryptionTypes.Kms => ServerSideEncryptionMethod.AWSKMS,
        _ => null,
    };

    private string? SseKmsKeyId() =>
        options.ServerSideEncryption == ServerSideEncryptionTypes.Kms && !string.IsNullOrEmpty(options.KmsKeyId) ? options.KmsKeyId : null;

    private ObjectLockMode? LockMode() => options.ObjectLock.Mode switch
    {
        "GOVERNANCE" => ObjectLockMode.Governance,
        "COMPLIANCE" => ObjectLockMode.Compliance,
        _ => null,
    };

    private DateTime? RetainUntil() =>
        LockMode() is null ? null : time.GetUtcNow().AddDays(options.ObjectLock.Days).UtcDateTime;

    /// <summary>
    /// What a request to the server can fail with, besides cancellation: the SDK's errors, and a
    /// connection reset or refused mid-request, which the HTTP stack raises as I/O errors.
    /// </summary>
    private static bool IsServiceError(Exception ex) =>
        ex is AmazonServiceException or AmazonClientException or HttpRequestException or IOException
            or System.Net.Sockets.SocketException or TimeoutException;

    private StorageException Translate(Exception ex, string action, string key)
    {
        var where = Describe(key);
        var endpoint = options.ServiceUrl is { } url ? Redaction.Url(url) : $"AWS {options.Region}";
        return ex switch
        {
            AmazonS3Exception { ErrorCode: "NoSuchBucket" } =>
                new StorageException($"cannot {action} {where}: bucket '{_bucket}' does not exist at {endpoint}", ex),
            AmazonS3Exception { ErrorCode: "AccessDenied" or "InvalidAccessKeyId" or "SignatureDoesNotMatch" } s3 =>
                new StorageException($"cannot {action} {where}: {s3.ErrorCode}: check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the shared credentials file) and the bucket policy", ex),
            AmazonS3Exception s3 => new StorageException($"cannot {action} {where}: {s3.ErrorCode}: {s3.Message}", ex),
            _ when ex.GetBaseException() is System.Security.Authentication.AuthenticationException =>
                new StorageException($"cannot {action} {where}: the TLS certificate of {endpoint} is not trusted: set Storage.CaFile to the CA that signed it", ex),
            HttpRequestException or AmazonClientException when ex.Message.Contains("credential", StringComparison.OrdinalIgnoreCase) =>
                new StorageException($"cannot {action} {where}: no S3 credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a shared credentials profile", ex),
            _ => new StorageException($"cannot {action} {where}: {endpoint} is unreachable: {ex.GetBaseException().Message}", ex),
        };
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not abort multipart upload {UploadId} of {Key}: {Reason}; prune removes it once stale")]
    private partial void LogAbortFailed(string key, string uploadId, string reason);
}
