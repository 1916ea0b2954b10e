using ClusterBackup.Sources;

namespace ClusterBackup.Tests.Sources;

public sealed class StaticPodManifestTests
{
    private const string ApiServer = """
        apiVersion: v1
        kind: Pod
        spec:
          containers:
          - command:
            - kube-apiserver
            - --advertise-address=10.0.0.1
            - "--encryption-provider-config=/etc/kubernetes/enc/enc.yaml"
            - --etcd-servers=https://127.0.0.1:2379
            volumeMounts:
            - mountPath: /etc/kubernetes/enc
              name: enc
        """;

    [Fact]
    public void The_encryption_config_is_the_path_kube_apiserver_is_given_quoted_or_not()
    {
        Assert.Equal("/etc/kubernetes/enc/enc.yaml", StaticPodManifest.EncryptionConfig(ApiServer));
        Assert.Equal("/srv/e.yaml", StaticPodManifest.EncryptionConfig("    - --encryption-provider-config=/srv/e.yaml\n"));
    }

    [Theory]
    [InlineData("kind: Pod\nmetadata:\n  name: kube-apiserver-cp1\n")] // encrypts nothing
    [InlineData("    - --encryption-provider-config=enc.yaml\n")] // relative: nowhere the agent can place it
    [InlineData("    - --encryption-provider-config=/etc/kubernetes/enc/\n")]
    public void Without_an_absolute_file_path_there_is_none(string manifest) =>
        Assert.Null(StaticPodManifest.EncryptionConfig(manifest));

    [Theory]
    [InlineData("/etc/kubernetes/pki/enc.yaml", "/etc/kubernetes/pki", true)]
    [InlineData("/etc/kubernetes/pki/enc.yaml", "/etc/kubernetes/pki/", true)]
    [InlineData("/etc/kubernetes/pki-enc/enc.yaml", "/etc/kubernetes/pki", false)]
    [InlineData("/etc/kubernetes/enc.yaml", "/etc/kubernetes/pki", false)]
    public void A_file_within_the_PKI_dir_is_in_its_archive_already(string path, string pki, bool within) =>
        Assert.Equal(within, StaticPodManifest.IsWithin(path, pki));
}
