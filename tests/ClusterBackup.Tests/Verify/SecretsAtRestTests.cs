using System.Text;
using ClusterBackup.Verify;

namespace ClusterBackup.Tests.Verify;

public sealed class SecretsAtRestTests
{
    private const string Configuration = """
        apiVersion: apiserver.config.k8s.io/v1
        kind: EncryptionConfiguration
        resources:
          - resources:
              - secrets
            providers:
              - aescbc:
                  keys:
                    - name: key2
                      secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Cg==
                    - name: "key1"
                      secret: dGhpcyBpcyBwYXNzd29yZA==
              - kms:
                  apiVersion: v2
                  name: vault
                  endpoint: unix:///var/run/kms.sock
              - identity: {}
        """;

    [Theory]
    [InlineData("k8s:enc:aescbc:v1:key1:\u0001\u0002binary", "aescbc", "key1")]
    [InlineData("k8s:enc:secretbox:v1:k:x", "secretbox", "k")]
    [InlineData("k8s:enc:kms:v2:vault:\u0000ciphertext", "kms", "vault")]
    public void An_encrypted_value_names_its_provider_and_key(string value, string provider, string name) =>
        Assert.Equal(new AtRestKey(provider, name), SecretsAtRest.KeyOf(Encoding.Latin1.GetBytes(value)));

    [Theory]
    [InlineData("k8s\u0000\u000a\u000c\u000a\u0002v1\u0012\u0006Secret")] // protobuf, as the identity provider stores it
    [InlineData("{\"kind\":\"Secret\",\"apiVersion\":\"v1\"}")]
    public void A_value_stored_as_it_is_has_no_key(string value) =>
        Assert.Null(SecretsAtRest.KeyOf(Encoding.Latin1.GetBytes(value)));

    [Fact]
    public void The_names_of_an_encryption_configuration_are_its_keys_and_kms_plugins()
    {
        Assert.True(SecretsAtRest.IsEncryptionConfiguration(Configuration));
        Assert.True(SecretsAtRest.IsEncryptionConfiguration("{\"kind\": \"EncryptionConfiguration\", \"resources\": []}"));
        Assert.False(SecretsAtRest.IsEncryptionConfiguration("kind: Pod\n"));
        Assert.Equal(["key1", "key2", "vault"], SecretsAtRest.KeyNames(Configuration).Order());
    }

    [Fact]
    public void Secrets_whose_keys_the_sets_configuration_names_can_be_given_back()
    {
        var encrypted = new Dictionary<AtRestKey, int> { [new("aescbc", "key1")] = 3, [new("kms", "vault")] = 1 };

        var (ok, detail) = SecretsAtRest.Judge(encrypted, 2, [("encryption-config-cp1: enc.yaml", Configuration)]);

        Assert.True(ok);
        Assert.Equal(
            "Secrets encrypted at rest (3 with aescbc key key1, 1 with kms key vault): the set's encryption config (encryption-config-cp1: enc.yaml) names every key; " +
            "a KMS plugin's keys are in the KMS, not in the set",
            detail);
        Assert.Equal((true, "5 Secrets, none encrypted at rest"), SecretsAtRest.Judge(new Dictionary<AtRestKey, int>(), 5, []));
    }

    [Fact]
    public void Secrets_whose_key_the_set_does_not_hold_cannot_be_given_back()
    {
        var encrypted = new Dictionary<AtRestKey, int> { [new("aescbc", "key3")] = 2 };

        Assert.Equal(
            (false, "Secrets encrypted at rest (2 with aescbc key key3) with aescbc key key3, but no encryption config in the set (pki-cp1: enc.yaml) names it: restored, they cannot be read"),
            SecretsAtRest.Judge(encrypted, 0, [("pki-cp1: enc.yaml", Configuration)]));
        Assert.Equal(
            (false, "Secrets encrypted at rest (2 with aescbc key key3) with aescbc key key3, but the set holds no encryption config (kube-apiserver's --encryption-provider-config): restored, they cannot be read"),
            SecretsAtRest.Judge(encrypted, 0, []));
    }
}
