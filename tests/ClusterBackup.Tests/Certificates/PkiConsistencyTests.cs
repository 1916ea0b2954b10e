using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using ClusterBackup.Certificates;

namespace ClusterBackup.Tests.Certificates;

/// <summary>
/// The PKI check on a kubeadm-shaped PKI made in memory: RSA keys as kubeadm writes them (PKCS#1),
/// as OpenSSL 3 writes them (PKCS#8), and ECDSA; then one thing broken at a time.
/// </summary>
public sealed class PkiConsistencyTests : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    private readonly Dictionary<string, AsymmetricAlgorithm> _caKeys = new(StringComparer.Ordinal);

    [Theory]
    [InlineData("pkcs1")]
    [InlineData("pkcs8")]
    [InlineData("ec")]
    public void A_kubeadm_PKI_and_its_kubeconfigs_hold_together(string keys)
    {
        var (pki, kubeconfigs) = Kubeadm(keys);

        Assert.Empty(PkiConsistency.Check("cp1", pki, kubeconfigs));
    }

    [Fact]
    public void A_key_that_is_not_its_certificates_is_named()
    {
        var (pki, kubeconfigs) = Kubeadm("pkcs1");
        pki["apiserver.key"] = KeyPem(NewRsa(), "pkcs1");
        pki["etcd/server.key"] = KeyPem(NewRsa(), "pkcs8");

        Assert.Equal(
            ["cp1: apiserver.key does not match apiserver.crt", "cp1: etcd/server.key does not match etcd/server.crt"],
            Found(pki, kubeconfigs));
    }

    [Fact]
    public void A_certificate_signed_by_another_CA_of_the_same_name_is_named_with_the_CA_its_issuer_names()
    {
        var (pki, kubeconfigs) = Kubeadm("pkcs1");
        var (_, otherEtcdCaKey) = Ca("etcd-ca"); // a CA made again, as a second `kubeadm init phase certs etcd-ca` would
        var serverKey = NewRsa();
        pki["etcd/server.crt"] = Pem(Leaf("kube-etcd", "etcd-ca", otherEtcdCaKey, serverKey));
        pki["etcd/server.key"] = KeyPem(serverKey, "pkcs1");

        Assert.Equal(["cp1: etcd/server.crt is not signed by etcd/ca.crt, the CA its issuer names (CN=etcd-ca)"], Found(pki, kubeconfigs));
    }

    [Fact]
    public void A_CA_key_that_is_not_its_certificates_and_a_service_account_pair_that_is_not_one_are_named()
    {
        var (pki, kubeconfigs) = Kubeadm("pkcs1");
        pki["ca.key"] = KeyPem(NewRsa(), "pkcs1");
        pki["sa.pub"] = Encoding.ASCII.GetBytes(NewRsa().ExportSubjectPublicKeyInfoPem());

        Assert.Equal(["cp1: ca.key does not match ca.crt", "cp1: sa.key does not match sa.pub"], Found(pki, kubeconfigs));
    }

    [Fact]
    public void A_kubeconfig_that_trusts_another_CA_or_holds_another_client_key_or_a_certificate_of_another_CA_is_named()
    {
        var (pki, kubeconfigs) = Kubeadm("pkcs1");
        var (otherCa, otherCaKey) = Ca("kubernetes");
        var clientKey = NewRsa();
        var client = Leaf("kubernetes-admin", "kubernetes", _caKeys["ca"], clientKey);
        kubeconfigs["admin.conf"] = Kubeconfig(Pem(otherCa), Pem(client), KeyPem(clientKey, "pkcs1"));
        kubeconfigs["scheduler.conf"] = Kubeconfig(pki["ca.crt"], Pem(client), KeyPem(NewRsa(), "pkcs1"));
        var forged = Leaf("system:kube-controller-manager", "kubernetes", otherCaKey, clientKey);
        kubeconfigs["controller-manager.conf"] = Kubeconfig(pki["ca.crt"], Pem(forged), KeyPem(clientKey, "pkcs8"));

        Assert.Equal(
        [
            "cp1: admin.conf holds certificate-authority-data other than ca.crt",
            "cp1: controller-manager.conf holds a client certificate not signed by ca.crt, the CA its issuer names (CN=kubernetes)",
            "cp1: scheduler.conf holds a client-key-data that does not match its client certificate",
        ], Found(pki, kubeconfigs));
    }

    [Fact]
    public void A_damaged_key_is_named_and_what_cannot_be_judged_is_left_alone()
    {
        var (pki, kubeconfigs) = Kubeadm("pkcs1");
        pki["apiserver.key"] = pki["apiserver.key"][..200]; // cut short
        pki["front-proxy-client.key"] = Encoding.ASCII.GetBytes(NewRsa().ExportEncryptedPkcs8PrivateKeyPem(
            "secret", new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 1000)));

        // A certificate of a CA the PKI does not hold (an external intermediate): nothing to judge it by.
        var (_, outsideKey) = Ca("corporate-intermediate");
        pki["extra.crt"] = Pem(Leaf("extra", "corporate-intermediate", outsideKey, NewRsa()));
        pki["aggregation.key"] = RandomNumberGenerator.GetBytes(32); // a raw key of another kind, with no certificate

        // A webhook's kubeconfig trusts its server's CA, and holds a client certificate of that CA.
        var (webhookCa, webhookCaKey) = Ca("webhook-ca");
        var webhookKey = NewRsa();
        kubeconfigs["webhook.conf"] = Kubeconfig(Pem(webhookCa), Pem(Leaf("apiserver", "webhook-ca", webhookCaKey, webhookKey)), KeyPem(webhookKey, "pkcs1"));

        Assert.Equal(["cp1: apiserver.key is not a readable private key"], Found(pki, kubeconfigs));
    }

    [Fact]
    public void During_a_CA_rotation_a_bundle_of_the_old_and_new_CA_verifies_leaves_of_either()
    {
        var (pki, kubeconfigs) = Kubeadm("pkcs1");
        var (newCa, newCaKey) = Ca("kubernetes");
        pki["ca.crt"] = [.. pki["ca.crt"], .. Pem(newCa)];
        pki["ca.key"] = KeyPem(newCaKey, "pkcs1");
        var apiserverKey = NewRsa();
        pki["apiserver.crt"] = Pem(Leaf("kube-apiserver", "kubernetes", newCaKey, apiserverKey));
        pki["apiserver.key"] = KeyPem(apiserverKey, "pkcs1");

        Assert.Empty(PkiConsistency.Check("cp1", pki, kubeconfigs));
    }

    public void Dispose()
    {
        foreach (var owned in _owned)
        {
            owned.Dispose();
        }
    }

    private static List<string> Found(Dictionary<string, byte[]> pki, Dictionary<string, byte[]> kubeconfigs) =>
        PkiConsistency.Check("cp1", pki, kubeconfigs).Select(m => $"{m.Node}: {m}").ToList();

    /// <summary>The files kubeadm writes: three CAs, their leaves, sa.key/sa.pub, and admin.conf.</summary>
    private (Dictionary<string, byte[]> Pki, Dictionary<string, byte[]> Kubeconfigs) Kubeadm(string keys)
    {
        var pki = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (name, commonName) in new[] { ("ca", "kubernetes"), ("front-proxy-ca", "front-proxy-ca"), ("etcd/ca", "etcd-ca") })
        {
            var key = NewKey(keys);
            var ca = SelfSigned(commonName, key);
            _caKeys[name] = key;
            pki[$"{name}.crt"] = Pem(ca);
            pki[$"{name}.key"] = KeyPem(key, keys);
        }

        foreach (var (name, commonName, ca, issuer) in new[]
        {
            ("apiserver", "kube-apiserver", "ca", "kubernetes"),
            ("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "ca", "kubernetes"),
            ("front-proxy-client", "front-proxy-client", "front-proxy-ca", "front-proxy-ca"),
            ("apiserver-etcd-client", "kube-apiserver-etcd-client", "etcd/ca", "etcd-ca"),
            ("etcd/server", "kube-etcd", "etcd/ca", "etcd-ca"),
            ("etcd/peer", "kube-etcd-peer", "etcd/ca", "etcd-ca"),
        })
        {
            var key = NewKey(keys);
            pki[$"{name}.crt"] = Pem(Leaf(commonName, issuer, _caKeys[ca], key));
            pki[$"{name}.key"] = KeyPem(key, keys);
        }

        var sa = NewRsa();
        pki["sa.key"] = KeyPem(sa, keys == "ec" ? "pkcs8" : keys);
        pki["sa.pub"] = Encoding.ASCII.GetBytes(sa.ExportSubjectPublicKeyInfoPem());

        var adminKey = NewKey(keys);
        var kubeconfigs = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["admin.conf"] = Kubeconfig(pki["ca.crt"], Pem(Leaf("kubernetes-admin", "kubernetes", _caKeys["ca"], adminKey)), KeyPem(adminKey, keys)),
            ["kubelet.conf"] = Encoding.UTF8.GetBytes(
                $"clusters:\n- cluster:\n    certificate-authority-data: {Convert.ToBase64String(pki["ca.crt"])}\nusers:\n- name: system:node:cp1\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n"),
        };
        return (pki, kubeconfigs);
    }

    private (X509Certificate2 Certificate, AsymmetricAlgorithm Key) Ca(string commonName)
    {
        var key = NewRsa();
        return (SelfSigned(commonName, key), key);
    }

    private X509Certificate2 SelfSigned(string commonName, AsymmetricAlgorithm key)
    {
        var request = Request(commonName, key);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(10));
        _owned.Add(certificate);
        return certificate;
    }

    private X509Certificate2 Leaf(string commonName, string issuer, AsymmetricAlgorithm issuerKey, AsymmetricAlgorithm key)
    {
        var generator = issuerKey is RSA rsa ? X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1) : X509SignatureGenerator.CreateForECDsa((ECDsa)issuerKey);
        var certificate = Request(commonName, key).Create(
            new X500DistinguishedName($"CN={issuer}"), generator, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1), RandomNumberGenerator.GetBytes(8));
        _owned.Add(certificate);
        return certificate;
    }

    private static CertificateRequest Request(string commonName, AsymmetricAlgorithm key) => key switch
    {
        RSA rsa => new CertificateRequest($"CN={commonName}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
        ECDsa ec => new CertificateRequest($"CN={commonName}", ec, HashAlgorithmName.SHA256),
        _ => throw new ArgumentException(key.GetType().Name),
    };

    private AsymmetricAlgorithm NewKey(string keys) => keys == "ec" ? Owned(ECDsa.Create(ECCurve.NamedCurves.nistP256)) : NewRsa();

    private RSA NewRsa() => Owned(RSA.Create(2048));

    private T Owned<T>(T disposable)
        where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    private static byte[] Pem(X509Certificate2 certificate) => Encoding.ASCII.GetBytes(certificate.ExportCertificatePem() + "\n");

    /// <summary>kubeadm: PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"); OpenSSL 3: PKCS#8 ("PRIVATE KEY").</summary>
    private static byte[] KeyPem(AsymmetricAlgorithm key, string format) => Encoding.ASCII.GetBytes((key, format) switch
    {
        (RSA rsa, "pkcs1") => rsa.ExportRSAPrivateKeyPem(),
        (ECDsa ec, "ec") => ec.ExportECPrivateKeyPem(),
        _ => key.ExportPkcs8PrivateKeyPem(),
    });

    private static byte[] Kubeconfig(byte[] ca, byte[] client, byte[] key) => Encoding.UTF8.GetBytes(string.Join('\n',
        "apiVersion: v1",
        "clusters:",
        "- cluster:",
        $"    certificate-authority-data: {Convert.ToBase64String(ca)}",
        "  name: kubernetes",
        "users:",
        "- name: user",
        "  user:",
        $"    client-certificate-data: {Convert.ToBase64String(client)}",
        $"    client-key-data: {Convert.ToBase64String(key)}",
        string.Empty));
}
