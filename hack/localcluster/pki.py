"""Certificates and credentials for the local control plane.

A real kube-apiserver insists on TLS, a service-account signing key and some
way to authenticate its clients. This module makes all of it once per cluster
directory with the ``cryptography`` library: a CA, the apiserver's serving
certificate, the service-account keypair, client certificates for the admin, the
controller-manager, the scheduler's user and the node, a serving certificate
for the node's log endpoint, and a static-token file whose admin token works for
kubectl, the Python client and kopf alike.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import secrets
from pathlib import Path

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as error:  # only creating credentials needs it: `down`, `env`, `status` do not
    _missing_cryptography: ImportError | None = error
else:
    _missing_cryptography = None

#: First address of the default service range: the ``kubernetes`` Service.
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
SERVING_DNS_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
SERVING_IPS = ("127.0.0.1", KUBERNETES_SERVICE_IP)
VALIDITY = datetime.timedelta(days=365)

ADMIN_USER = "admin"
ADMIN_GROUP = "system:masters"
NODE_NAME = "local-node"

#: Client certificates: file stem -> (user, groups). RBAC's bootstrap policy and the
#: Node authorizer give these users exactly the rights of the real components.
CLIENTS: dict[str, tuple[str, list[str]]] = {
    "admin": (ADMIN_USER, [ADMIN_GROUP]),
    "kube-controller-manager": ("system:kube-controller-manager", []),
    "kube-scheduler": ("system:kube-scheduler", []),
    "node": (f"system:node:{NODE_NAME}", ["system:nodes"]),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pki:
    """Paths of the credential files in one cluster directory."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def client_cert(self, client: str) -> Path:
        return self.dir / f"{client}.crt"

    def client_key(self, client: str) -> Path:
        return self.dir / f"{client}.key"

    @property
    def kubelet_cert(self) -> Path:
        return self.dir / "kubelet.crt"

    @property
    def kubelet_key(self) -> Path:
        return self.dir / "kubelet.key"

    @property
    def tokens_csv(self) -> Path:
        return self.dir / "tokens.csv"

    @property
    def admin_token_file(self) -> Path:
        return self.dir / "admin.token"

    def admin_token(self) -> str:
        return self.admin_token_file.read_text().strip()

    def complete(self) -> bool:
        files = [
            self.ca_cert,
            self.ca_key,
            self.apiserver_cert,
            self.apiserver_key,
            self.sa_key,
            self.sa_pub,
            self.kubelet_cert,
            self.kubelet_key,
            self.tokens_csv,
            self.admin_token_file,
        ]
        files += [self.client_cert(name) for name in CLIENTS]
        files += [self.client_key(name) for name in CLIENTS]
        return all(path.is_file() for path in files)


def ensure_pki(directory: Path) -> Pki:
    """Create every credential in ``directory`` unless they all exist already."""
    pki = Pki(dir=directory)
    if pki.complete():
        return pki
    if _missing_cryptography is not None:
        raise RuntimeError(
            "the Python package 'cryptography' is needed to create the cluster's certificates "
            f"({_missing_cryptography}); install it: pip install cryptography"
        )
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)

    ca_key = _new_key()
    ca_cert = _ca_certificate(ca_key)
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.ca_cert, ca_cert)

    serving_key = _new_key()
    _write_key(pki.apiserver_key, serving_key)
    _write_cert(
        pki.apiserver_cert,
        _serving_certificate(
            serving_key,
            ca_key,
            ca_cert,
            common_name="kube-apiserver",
            dns_names=SERVING_DNS_NAMES,
            ips=SERVING_IPS,
        ),
    )

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    for stem, (user, groups) in CLIENTS.items():
        key = _new_key()
        _write_key(pki.client_key(stem), key)
        _write_cert(pki.client_cert(stem), _client_certificate(key, user, groups, ca_key, ca_cert))

    kubelet_key = _new_key()
    _write_key(pki.kubelet_key, kubelet_key)
    _write_cert(
        pki.kubelet_cert,
        _serving_certificate(
            kubelet_key,
            ca_key,
            ca_cert,
            common_name=NODE_NAME,
            dns_names=("localhost", NODE_NAME),
            ips=("127.0.0.1",),
        ),
    )

    token = secrets.token_urlsafe(32)
    pki.admin_token_file.write_text(token + "\n")
    pki.admin_token_file.chmod(0o600)
    pki.tokens_csv.write_text(f'{token},{ADMIN_USER},{ADMIN_USER}-uid,"{ADMIN_GROUP}"\n')
    pki.tokens_csv.chmod(0o600)
    return pki


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(subject: x509.Name, issuer: x509.Name, public_key: object) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local-kubernetes-ca")])
    return (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf(
    builder: x509.CertificateBuilder,
    key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
) -> x509.Certificate:
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _serving_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    common_name: str,
    dns_names: tuple[str, ...],
    ips: tuple[str, ...],
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = _builder(subject, ca_cert.subject, key.public_key()).add_extension(
        x509.SubjectAlternativeName(names), critical=False
    )
    return _leaf(builder, key, ExtendedKeyUsageOID.SERVER_AUTH, ca_key, ca_cert)


def _client_certificate(
    key: ec.EllipticCurvePrivateKey,
    user: str,
    groups: list[str],
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
) -> x509.Certificate:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    builder = _builder(x509.Name(attributes), ca_cert.subject, key.public_key())
    return _leaf(builder, key, ExtendedKeyUsageOID.CLIENT_AUTH, ca_key, ca_cert)
