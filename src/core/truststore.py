"""CA certificates the whole JVM must trust, as a Java truststore.

Some of Trino's clients take no CA of their own: its S3 file system (the AWS SDK)
trusts only the JVM's default truststore. An S3 endpoint with its own CA (MinIO,
Ceph) therefore needs the JVM to trust that CA: the charm writes a truststore with
the system's CAs plus the provider's, and points `javax.net.ssl.trustStore` at it.

The truststore is a JKS file built here byte for byte (no randomness, so the same
CAs always give the same file and a hook with nothing new restarts nothing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable

TRUSTSTORE = "/etc/trino/certs/jvm-truststore.jks"
# JKS protects only its integrity with the password; CA certificates are public.
PASSWORD = "changeit"  # noqa: S105  (the JDK's well-known truststore password)
FLAGS = (
    f"-Djavax.net.ssl.trustStore={TRUSTSTORE}",
    "-Djavax.net.ssl.trustStoreType=JKS",
    f"-Djavax.net.ssl.trustStorePassword={PASSWORD}",
)

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_MAGIC, _VERSION, _TRUSTED_CERT = 0xFEEDFEED, 2, 2


def certificates(pem: str) -> list[bytes]:
    """The DER certificates in PEM text; unreadable blocks are left out."""
    found = []
    for body in _PEM.findall(pem):
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        if der[:1] == b"\x30":  # an ASN.1 SEQUENCE, as every certificate is
            found.append(der)
    return found


def pem_blocks(pem: str) -> str:
    """Only the readable certificates of ``pem``, as PEM text (empty if none)."""
    return "".join(
        "-----BEGIN CERTIFICATE-----\n"
        + "\n".join(_wrap(base64.b64encode(der).decode()))
        + "\n-----END CERTIFICATE-----\n"
        for der in certificates(pem)
    )


def jks(ders: Iterable[bytes]) -> bytes:
    """A JKS truststore holding each certificate once, in the order given."""
    unique = list(dict.fromkeys(ders))
    body = struct.pack(">III", _MAGIC, _VERSION, len(unique))
    for number, der in enumerate(unique):
        body += struct.pack(">I", _TRUSTED_CERT) + _utf(f"ca-{number}") + struct.pack(">Q", 0)
        body += _utf("X.509") + struct.pack(">I", len(der)) + der
    # JKS integrity: SHA-1 over the password (UTF-16BE), a fixed phrase, then the body.
    digest = hashlib.sha1(PASSWORD.encode("utf-16-be") + b"Mighty Aphrodite" + body)  # noqa: S324
    return body + digest.digest()


def _utf(text: str) -> bytes:
    encoded = text.encode()
    return struct.pack(">H", len(encoded)) + encoded


def _wrap(text: str, width: int = 64) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)]
