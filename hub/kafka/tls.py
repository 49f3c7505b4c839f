"""Certificates for a cluster's TLS listeners: a private CA and the leaf
certificates it signs (``hub certs``), for compose's set-up job and the
TLS test. Production may bring its own PKI; these are PEM files Kafka's
``ssl.keystore.type=PEM`` and the hub's clients read as they are."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_DAYS = 825


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "supervision-hub"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(out: Path, now: dt.datetime) -> None:
    """ca.pem and ca.key in ``out``, unless there already."""
    if (out / "ca.pem").exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("supervision-hub CA")).issuer_name(_name("supervision-hub CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(out / "ca.key", key)
    (out / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_cert(out: Path, name: str, hosts: list[str], now: dt.datetime, client: bool = False) -> Path:
    """``name``.pem and ``name``.key signed by the CA in ``out``: a server
    certificate for ``hosts`` (DNS names or IP addresses), or a client's;
    either's common name is its principal (``User:name`` under the brokers'
    mapping rule)."""
    ca_key = serialization.load_pem_private_key((out / "ca.key").read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    builder = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               # A broker is also a client: of the controllers and of the other brokers.
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH] if client else
                                                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                              critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(out / f"{name}.key", key)
    (out / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out / f"{name}.pem"
