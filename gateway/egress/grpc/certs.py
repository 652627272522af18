"""A private CA with a server and client certificates, for the demo and the tests.

Production deployments use the city's PKI; this only saves a developer the openssl dance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, slots=True)
class Pem:
    cert: bytes
    key: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vsgw"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(cn: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, *, server: bool = False,
           ca: bool = False, days: int = 825) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(cn)
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    return Pem(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


class DevCA:
    def __init__(self, name: str = "vsgw dev CA") -> None:
        self._cert, self._key = _issue(name, None, ca=True)
        self.pem = _pem(self._cert, self._key)

    def issue(self, cn: str, *, server: bool = False) -> Pem:
        return _pem(*_issue(cn, (self._cert.subject, self._key), server=server))


def write_dev_pki(folder: Path, clients: tuple[str, ...] = ("police-image-platform",)) -> dict[str, Path]:
    """CA, server (localhost/127.0.0.1) and client certificates as PEM files; keys are 0600."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = DevCA()
    files: dict[str, Path] = {}

    def put(name: str, data: bytes, secret: bool = False) -> None:
        path = folder / name
        path.write_bytes(data)
        if secret:
            path.chmod(0o600)
        files[name] = path

    put("ca.pem", ca.pem.cert)
    server = ca.issue("vsgw-gateway", server=True)
    put("server.pem", server.cert)
    put("server.key", server.key, secret=True)
    for cn in clients:
        client = ca.issue(cn)
        put(f"{cn}.pem", client.cert)
        put(f"{cn}.key", client.key, secret=True)
    return files
