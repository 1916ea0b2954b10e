using System.Security.Cryptography;
using System.Text;
using ClusterBackup.Encryption;

namespace ClusterBackup.Tests.Encryption;

/// <summary>The age project's own test vectors (age-testkit/, BSD-3-Clause): every X25519 vector that is not armored.</summary>
public sealed class AgeTestkitTests
{
    private static readonly string VectorDirectory = Path.Combine(AppContext.BaseDirectory, "Encryption", "age-testkit");

    public static TheoryData<string> Vectors()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.EnumerateFiles(VectorDirectory).Where(f => Path.GetFileName(f) is not ("README.md" or "LICENSE")).Order(StringComparer.Ordinal))
        {
            var (headers, _) = Read(file);
            if (headers.ContainsKey("identity") && !headers.ContainsKey("armored"))
            {
                data.Add(Path.GetFileName(file));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public async Task Vector_decrypts_or_fails_as_the_testkit_expects(string name)
    {
        var (headers, body) = Read(Path.Combine(VectorDirectory, name));
        var identities = headers["identity"].Select(i => AgeIdentity.TryParse(i, out var id) ? id : throw new FormatException(i)).ToList();
        var expect = headers["expect"][0];

        using var output = new MemoryStream();
        Exception? failure = null;
        try
        {
            await using var stream = await AgeDecryptingStream.OpenAsync(new MemoryStream(body), identities);
            await stream.CopyToAsync(output);
        }
        catch (AgeException ex)
        {
            failure = ex;
        }

        if (expect == "success")
        {
            Assert.Null(failure);
            Assert.Equal(headers["payload"][0], Convert.ToHexStringLower(SHA256.HashData(output.ToArray())));
            return;
        }

        var age = Assert.IsType<AgeException>(failure);
        var kind = expect switch
        {
            "no match" => AgeFailure.NoMatch,
            "HMAC failure" => AgeFailure.Hmac,
            "header failure" => AgeFailure.Header,
            "payload failure" => AgeFailure.Payload,
            _ => throw new InvalidOperationException($"unknown expectation {expect}"),
        };
        Assert.True(kind == age.Failure, $"{name}: expected {kind}, got {age.Failure}: {age.Message}");
    }

    private static (Dictionary<string, List<string>> Headers, byte[] Body) Read(string file)
    {
        var bytes = File.ReadAllBytes(file);
        var headers = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var position = 0;
        while (true)
        {
            var end = Array.IndexOf(bytes, (byte)'\n', position);
            var line = Encoding.UTF8.GetString(bytes, position, end - position);
            position = end + 1;
            if (line.Length == 0)
            {
                break;
            }

            var colon = line.IndexOf(": ", StringComparison.Ordinal);
            var key = line[..colon];
            if (!headers.TryGetValue(key, out var values))
            {
                headers[key] = values = [];
            }

            values.Add(line[(colon + 2)..]);
        }

        return (headers, bytes[position..]);
    }
}
