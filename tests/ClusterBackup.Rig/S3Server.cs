using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace ClusterBackup.Rig;

/// <summary>An S3 server on loopback: moto_server (full API) or s3rver (a second, quirkier implementation).</summary>
public sealed class S3Server : IAsyncDisposable
{
    public const string AccessKey = "S3RVER";
    public const string SecretKey = "S3RVER";
    public const string Region = "us-east-1";

    private readonly ExternalProcess _process;
    private readonly string _scheme;

    private S3Server(ExternalProcess process, string kind, int port, string scheme = "http")
    {
        _scheme = scheme;
        _process = process;
        Kind = kind;
        Port = port;
    }

    public string Kind { get; }

    public int Port { get; }

    public string Endpoint => $"{_scheme}://127.0.0.1:{Port}";

    public string Log => _process.Tail();

    /// <summary>The whole request log so far.</summary>
    public string FullLog() => _process.Tail(int.MaxValue);

    /// <summary>What a test needs in its environment to reach this server with the AWS CLI or SDK.</summary>
    public static IReadOnlyDictionary<string, string> Credentials { get; } = new Dictionary<string, string>
    {
        ["AWS_ACCESS_KEY_ID"] = AccessKey,
        ["AWS_SECRET_ACCESS_KEY"] = SecretKey,
        ["AWS_DEFAULT_REGION"] = Region,
        ["AWS_EC2_METADATA_DISABLED"] = "true",
    };

    public static async Task<S3Server> StartMotoAsync(string logDirectory)
    {
        var port = Tools.FreePort();
        var process = ExternalProcess.Start("moto", "moto_server", ["-H", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture)], logDirectory);
        await process.WaitForPortAsync(port);
        return new S3Server(process, "moto", port);
    }

    /// <summary>s3rver runs under --openssl-legacy-provider: without it, listing pagination fails on this Node.</summary>
    public static async Task<S3Server> StartS3rverAsync(string dataDirectory, string logDirectory, (string Cert, string Key)? tls = null)
    {
        var script = Path.Combine(Tools.RepositoryRoot(), "tests", "s3rver", "node_modules", "s3rver", "bin", "s3rver.js");
        if (!File.Exists(script))
        {
            throw new InvalidOperationException($"s3rver is not installed ({script}): run 'npm ci --prefix tests/s3rver'");
        }

        Directory.CreateDirectory(dataDirectory);
        var port = Tools.FreePort();
        List<string> arguments = ["--openssl-legacy-provider", script, "-d", dataDirectory, "-a", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--silent"];
        if (tls is { } pair)
        {
            arguments.AddRange(["--cert", pair.Cert, "--key", pair.Key]);
        }

        var process = ExternalProcess.Start(tls is null ? "s3rver" : "s3rver-tls", "node", arguments, logDirectory);
        await process.WaitForPortAsync(port);
        return new S3Server(process, "s3rver", port, tls is null ? "http" : "https");
    }

    public AmazonS3Client CreateClient() => new(
        new BasicAWSCredentials(AccessKey, SecretKey),
        new AmazonS3Config
        {
            ServiceURL = Endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = Region,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });

    public async Task CreateBucketAsync(string bucket)
    {
        using var client = CreateClient();
        await client.PutBucketAsync(new PutBucketRequest { BucketName = bucket });
    }

    /// <summary>Runs the AWS CLI against this server.</summary>
    public Task<ToolResult> AwsAsync(params string[] arguments) =>
        Tools.RunAsync("aws", ["--endpoint-url", Endpoint, .. arguments], new Dictionary<string, string>(Credentials));

    /// <summary>Keys of the objects under a prefix, as the aws CLI lists them.</summary>
    public async Task<IReadOnlyList<string>> ObjectKeysAsync(string bucket, string prefix) =>
        await ListAsync(["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix, "--output", "json"], "Contents");

    /// <summary>Keys of the multipart uploads still open under a prefix, as the aws CLI lists them.</summary>
    public async Task<IReadOnlyList<string>> OpenUploadKeysAsync(string bucket, string prefix) =>
        await ListAsync(["s3api", "list-multipart-uploads", "--bucket", bucket, "--prefix", prefix, "--output", "json"], "Uploads");

    private async Task<IReadOnlyList<string>> ListAsync(string[] arguments, string property)
    {
        var result = await AwsAsync(arguments);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"aws {string.Join(' ', arguments)} failed: {result}");
        }

        if (string.IsNullOrWhiteSpace(result.Output))
        {
            return [];
        }

        var json = System.Text.Json.JsonSerializer.Deserialize<System.Text.Json.JsonElement>(result.Output);
        return json.TryGetProperty(property, out var items) && items.ValueKind == System.Text.Json.JsonValueKind.Array
            ? items.EnumerateArray().Select(i => i.GetProperty("Key").GetString()!).ToList()
            : [];
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
