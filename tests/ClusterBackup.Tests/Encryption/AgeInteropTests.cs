using System.Security.Cryptography;
using ClusterBackup.Encryption;
using ClusterBackup.Rig;

namespace ClusterBackup.Tests.Encryption;

/// <summary>Interop both ways with Debian's age and age-keygen.</summary>
public sealed class AgeInteropTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cluster-backup-age-").FullName;

    public static TheoryData<int> Sizes => [0, 1, 64 * 1024, (64 * 1024) + 1, (3 * 1024 * 1024) + 5];

    private async Task<(string KeyFile, AgeIdentity Identity)> KeygenAsync()
    {
        var keyFile = Path.Combine(_directory, $"key-{Guid.NewGuid():N}.txt");
        await Tools.CheckAsync("age-keygen", "-o", keyFile);
        var identity = AgeIdentity.ParseFile(await File.ReadAllTextAsync(keyFile), keyFile).Single();
        var recipient = (await Tools.CheckAsync("age-keygen", "-y", keyFile)).Trim();
        Assert.Equal(recipient, identity.Recipient.ToString());
        return (keyFile, identity);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task What_we_encrypt_decrypts_with_age(int size)
    {
        var (keyFile, identity) = await KeygenAsync();
        var other = AgeIdentity.Generate();
        var plain = RandomNumberGenerator.GetBytes(size);
        var encrypted = Path.Combine(_directory, "ours.age");
        await using (var file = File.Create(encrypted))
        {
            var age = new AgeEncryptingStream(file, [other.Recipient, identity.Recipient]);
            for (var offset = 0; offset < size; offset += 10_000)
            {
                await age.WriteAsync(plain.AsMemory(offset, Math.Min(10_000, size - offset)));
            }

            await age.FinishAsync();
        }

        var decrypted = Path.Combine(_directory, "ours.plain");
        // Redirected by the shell: age -o creates no file for an empty plaintext.
        await Tools.CheckAsync("sh", "-c", "age -d -i \"$0\" \"$1\" > \"$2\"", keyFile, encrypted, decrypted);
        Assert.Equal(plain, await File.ReadAllBytesAsync(decrypted));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task What_age_encrypts_decrypts_with_ours(int size)
    {
        var (_, identity) = await KeygenAsync();
        var plain = RandomNumberGenerator.GetBytes(size);
        var plainFile = Path.Combine(_directory, "theirs.plain");
        await File.WriteAllBytesAsync(plainFile, plain);
        var encrypted = Path.Combine(_directory, "theirs.age");
        await Tools.CheckAsync("age", "-r", AgeIdentity.Generate().Recipient.ToString(), "-r", identity.Recipient.ToString(), "-o", encrypted, plainFile);

        await using var stream = await AgeDecryptingStream.OpenAsync(File.OpenRead(encrypted), [identity]);
        using var output = new MemoryStream();
        await stream.CopyToAsync(output);

        Assert.Equal(plain, output.ToArray());
    }

    [Fact]
    public async Task A_wrong_identity_is_no_match_naming_the_identity()
    {
        var (_, identity) = await KeygenAsync();
        var wrong = AgeIdentity.Generate();
        var encrypted = await EncryptAsync(identity.Recipient, new byte[100]);

        var ex = await Assert.ThrowsAsync<AgeException>(() => AgeDecryptingStream.OpenAsync(new MemoryStream(encrypted), [wrong]));

        Assert.Equal(AgeFailure.NoMatch, ex.Failure);
        Assert.Contains(wrong.Recipient.ToString(), ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(30, "Header")]        // inside the stanza's share
    [InlineData(-100_000, "Payload")] // inside the payload (counted from the end)
    [InlineData(-1, "Payload")]       // the last tag
    public async Task A_flipped_byte_fails_with_its_kind(int position, string kind)
    {
        var expected = Enum.Parse<AgeFailure>(kind);
        var identity = AgeIdentity.Generate();
        var encrypted = await EncryptAsync(identity.Recipient, RandomNumberGenerator.GetBytes(200_000));
        encrypted[position >= 0 ? position : encrypted.Length + position] ^= 0x40;

        var ex = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted, identity));

        Assert.True(ex.Failure == expected || (expected == AgeFailure.Header && ex.Failure is AgeFailure.NoMatch or AgeFailure.Hmac), ex.ToString());
    }

    [Fact]
    public async Task A_flipped_byte_in_the_mac_line_is_an_hmac_failure()
    {
        var identity = AgeIdentity.Generate();
        var encrypted = await EncryptAsync(identity.Recipient, new byte[10]);
        var macLine = System.Text.Encoding.ASCII.GetString(encrypted).IndexOf("--- ", StringComparison.Ordinal) + 6;
        encrypted[macLine] = (byte)(encrypted[macLine] == 'A' ? 'B' : 'A');

        var ex = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted, identity));

        Assert.Equal(AgeFailure.Hmac, ex.Failure);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    [InlineData(65_552)]
    public async Task A_truncated_file_is_a_payload_failure(int cut)
    {
        var identity = AgeIdentity.Generate();
        var encrypted = await EncryptAsync(identity.Recipient, RandomNumberGenerator.GetBytes(200_000));

        var ex = await Assert.ThrowsAsync<AgeException>(() => DecryptAsync(encrypted[..^cut], identity));

        Assert.Equal(AgeFailure.Payload, ex.Failure);
    }

    private static async Task<byte[]> EncryptAsync(AgeRecipient recipient, byte[] plain)
    {
        using var output = new MemoryStream();
        var age = new AgeEncryptingStream(output, [recipient]);
        await age.WriteAsync(plain);
        await age.FinishAsync();
        return output.ToArray();
    }

    private static async Task<byte[]> DecryptAsync(byte[] encrypted, AgeIdentity identity)
    {
        await using var stream = await AgeDecryptingStream.OpenAsync(new MemoryStream(encrypted), [identity]);
        using var output = new MemoryStream();
        await stream.CopyToAsync(output);
        return output.ToArray();
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
