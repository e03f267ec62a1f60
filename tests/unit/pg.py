"""A throwaway PostgreSQL server from Debian's binaries, for the metastore and live tests.

initdb refuses to run as root, so as root the server runs as the `postgres`
user (or `nobody`) in a temporary folder it owns. It always listens on
127.0.0.1, where the tests log in without TLS; clients on any other address
(the live tier's pods) must use TLS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pg8000.native

LOOPBACK = "127.0.0.1"
SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "super-Secr3t"
ROLE = "iceberg_owner"
ROLE_PASSWORD = "r0le-Pa55word"


def server_bin() -> pathlib.Path | None:
    """The folder with initdb and postgres: $PGBIN, else the newest Debian install."""
    candidates = [os.environ["PGBIN"]] if os.environ.get("PGBIN") else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2])
    )[::-1]
    for candidate in candidates:
        path = pathlib.Path(candidate)
        if (path / "initdb").exists() and (path / "postgres").exists():
            return path
    return None


@dataclasses.dataclass
class Server:
    """A running server: connect as the superuser or as the password-auth role."""

    port: int
    ca: str  # PEM of the CA that signed the server's TLS certificate (for `host`)
    host: str = "127.0.0.1"  # where clients reach it

    def connect(self, database: str = "postgres", *, superuser: bool = True):
        user, password = (SUPERUSER, SUPERUSER_PASSWORD) if superuser else (ROLE, ROLE_PASSWORD)
        return pg8000.native.Connection(
            user, host=LOOPBACK, port=self.port, database=database, password=password
        )

    @contextlib.contextmanager
    def database(self, name: str) -> Iterator[str]:
        """A fresh database owned by ROLE, dropped afterwards."""
        admin = self.connect()
        admin.run(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        try:
            yield name
        finally:
            admin.run(f'DROP DATABASE "{name}" WITH (FORCE)')
            admin.close()


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _make_certificates(root: pathlib.Path, host: str) -> None:
    """A CA and a server certificate for `host` (openssl comes with Debian's postgresql)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    new_key = ["-newkey", "rsa:2048", "-nodes"]
    openssl("req", "-x509", *new_key, "-days", "2", "-subj", "/CN=test-ca", "-keyout", "ca.key",
            "-out", "ca.pem")  # fmt: skip
    openssl("req", *new_key, "-subj", f"/CN={host}", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
    (root / "san.ext").write_text(f"subjectAltName=IP:{host},DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext",
            "-out", "server.pem")  # fmt: skip
    (root / "server.key").chmod(0o600)


def _as_owner(root: pathlib.Path) -> list[str]:
    """The command prefix that runs the server as a non-root user owning `root`."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        for path in [root, *root.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return ["runuser", "-u", user, "--"]
    raise RuntimeError("running as root and neither `postgres` nor `nobody` exists")


@contextlib.contextmanager
def running_server(bindir: pathlib.Path, host: str = LOOPBACK) -> Iterator[Server]:
    """initdb + postgres on a free port of `host` and 127.0.0.1; everything removed afterwards."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="trino-k8s-pg-"))
    root.chmod(0o755)
    (root / "pwfile").write_text(SUPERUSER_PASSWORD + "\n")
    _make_certificates(root, host)
    prefix = _as_owner(root)
    data = root / "data"
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            f"--pwfile={root / 'pwfile'}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    with (data / "pg_hba.conf").open("a") as hba:  # after initdb's rules for 127.0.0.1
        hba.write("hostssl all all all scram-sha-256\n")
    port = free_port(host)
    with (root / "server.log").open("w") as log:
        server = subprocess.Popen(
            [
                *prefix,
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(root),
                "-c",
                f"listen_addresses={','.join(dict.fromkeys((LOOPBACK, host)))}",
                "-c",
                "fsync=off",
                "-c",
                "ssl=on",
                "-c",
                f"ssl_cert_file={root / 'server.pem'}",
                "-c",
                f"ssl_key_file={root / 'server.key'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        found = Server(port, ca=(root / "ca.pem").read_text(), host=host)
        deadline = time.monotonic() + 30
        while True:
            try:
                admin = found.connect()
                break
            except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((root / "server.log").read_text()) from None
                time.sleep(0.2)
        admin.run(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD}'")
        admin.close()
        yield found
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
