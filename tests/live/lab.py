"""What several live modules share: a test CA that signs the charm's CSRs, the JVM's pid.

The CA plays the TLS provider (self-signed-certificates) and any server the test runs
with a certificate of its own (PostgreSQL, LDAP, a JWKS endpoint).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import pathlib
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import ops
import requests
import trino.auth
import trino.dbapi
import trino.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from netlab import Pod
from sql import QueryError

T = TypeVar("T")
ACTIVE_NODES = "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'"


class LabCA:
    """The provider's CA: signs what the charm asks for, as self-signed-certificates does."""

    def __init__(self, folder: pathlib.Path):
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trino live test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()
        self.path = folder / "ca.pem"
        self.path.write_text(self.pem)

    def sign(self, csr_pem: str) -> str:
        """A server certificate for the CSR: its subject and names, this CA as issuer."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key_id = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(names, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id.value),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, names: list[str]) -> tuple[str, str]:
        """A server certificate and its key (both PEM) for a test server (LDAP...).

        Names that are IP addresses go in as IP names, the others as DNS names.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .add_extension(x509.SubjectAlternativeName([_name(n) for n in names]), False)
            .sign(key, hashes.SHA256())
        )
        certificate = self.sign(request.public_bytes(serialization.Encoding.PEM).decode())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return certificate, key_pem

    def answer(self, csrs: str) -> str:
        """The provider's `certificates` for the unit's `certificate_signing_requests`."""
        answers = []
        for request in json.loads(csrs):
            csr = request["certificate_signing_request"]
            certificate = self.sign(csr)
            answers.append(
                {
                    "certificate_signing_request": csr,
                    "certificate": certificate,
                    "ca": self.pem,
                    "chain": [certificate, self.pem],
                }
            )
        return json.dumps(answers)


def _name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def users_yaml(users: dict[str, str]) -> str:
    return "".join(f"{user}: {password}\n" for user, password in users.items())


def trino_pid(pod: Pod) -> int:
    """The JVM's process id in the pod (`launcher run` execs java, renamed trino-server)."""
    pids = subprocess.run(
        ["ip", "netns", "pids", pod.netns], capture_output=True, text=True, check=True
    ).stdout.split()
    java, seen = [], []
    for pid in pids:
        try:
            program = os.readlink(f"/proc/{pid}/exe")
        except FileNotFoundError:
            continue
        seen.append((pid, program))
        if os.path.basename(program) == "java":
            java.append(int(pid))
    assert len(java) == 1, f"expected one JVM in {pod.name}, found {seen}"
    return java[0]


def trino_service_active(pod: Pod) -> bool:
    client = ops.pebble.Client(socket_path=pod.socket)
    return client.get_services(["trino"])[0].current == ops.pebble.ServiceStatus.ACTIVE


def query_https(
    host: str, ca: pathlib.Path, auth: trino.auth.Authentication, sql: str, user: str | None = None
) -> list:
    """A query over HTTPS, Trino's certificate checked against the test CA alone."""
    session = requests.Session()
    session.trust_env = False  # no REQUESTS_CA_BUNDLE from the environment replaces it
    session.verify = str(ca)
    with trino.dbapi.connect(
        host=host,
        port=8443,
        user=user,
        http_scheme="https",
        auth=auth,
        http_session=session,
        max_attempts=1,
        request_timeout=120,  # the live machine may be loaded: a slow answer is no failure
    ) as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def once_listed(run: Callable[[], T], timeout: float = 60) -> T:
    """`run()`, again while Trino answers NO_NODES_AVAILABLE; then its answer or error.

    Trino says it has started, and so the charm says active, a few seconds before
    its coordinator lists the nodes that serve a catalog (seen live on 476:
    `SELECT current_groups()` answered and the tpch query right after it did not).
    A client retries that error; so does a test that queries right after a start.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return run()
        except (trino.exceptions.TrinoQueryError, QueryError) as error:
            if error.error_name != "NO_NODES_AVAILABLE" or time.monotonic() > deadline:
                raise
        time.sleep(2)
