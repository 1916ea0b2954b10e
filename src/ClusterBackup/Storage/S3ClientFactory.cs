using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using ClusterBackup.Configuration;
using ClusterBackup.Tls;

namespace ClusterBackup.Storage;

/// <summary>Builds the S3 client from <c>Storage</c>; credentials come from the AWS SDK's default chain.</summary>
internal static class S3ClientFactory
{
    public static IAmazonS3 Create(StorageOptions options)
    {
        var config = new AmazonS3Config { ForcePathStyle = options.ForcePathStyle };
        if (string.IsNullOrWhiteSpace(options.ServiceUrl))
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }
        else
        {
            config.ServiceURL = options.ServiceUrl;
            config.AuthenticationRegion = options.Region;

            // The SDK's default flexible checksums (CRC32 trailers) are rejected or stored as data
            // by many S3-compatible servers; send them only where an operation requires one.
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }

        if (options.CaFile is not null)
        {
            config.HttpClientFactory = new PrivateCaHttpClientFactory(options.CaFile);
        }

        return new AmazonS3Client(config);
    }

    /// <summary>Trusts only the private CA of the endpoint (Storage.CaFile).</summary>
    private sealed class PrivateCaHttpClientFactory(string caFile) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig)
        {
            var ca = X509CertificateLoader.LoadCertificateFromFile(caFile);
            var handler = new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                        certificate is not null
                        && !errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch)
                        && PrivateCaTrust.IsIssuedBy(certificate, ca, out _),
                },
            };
            return new HttpClient(handler) { Timeout = clientConfig.Timeout ?? TimeSpan.FromMinutes(5) };
        }

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => true;

        public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => false;

        public override string GetConfigUniqueString(IClientConfig clientConfig) => "private-ca:" + caFile;
    }
}
