"""drain() against real loopback servers: by header, with a password over HTTPS, behind a proxy."""

from __future__ import annotations

import datetime
import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest
from charmlibs.interfaces.tls_certificates import (
    Certificate,
    CertificateRequestAttributes,
    PrivateKey,
)

from core import shutdown
from core.plan import Plan
from workload import Credentials, drain, with_drain_request


class FakeState(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []
    status = 200

    def do_PUT(self):
        length = int(self.headers.get("Content-Length", "0"))
        FakeState.seen.append(
            {"path": self.path, "body": self.rfile.read(length).decode(), **dict(self.headers)}
        )
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format, *args):  # keep pytest output clean
        pass


def serve(httpd: http.server.HTTPServer) -> Iterator[http.server.HTTPServer]:
    FakeState.seen = []
    FakeState.status = 200
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    yield from serve(http.server.HTTPServer(("127.0.0.1", 0), FakeState))


@pytest.fixture
def ca_and_tls_server(tmp_path) -> Iterator[tuple[str, http.server.HTTPServer]]:
    """An HTTPS server whose certificate (for 127.0.0.1) a fresh CA signed."""
    ca_key = PrivateKey.generate()
    ca = Certificate.generate_self_signed_ca(
        CertificateRequestAttributes(common_name="ca"), ca_key, datetime.timedelta(days=1)
    )
    key = PrivateKey.generate()
    csr = CertificateRequestAttributes(common_name="trino", sans_ip=["127.0.0.1"]).generate_csr(
        key
    )
    cert = Certificate.generate(csr, ca, ca_key, datetime.timedelta(days=1))
    pem = tmp_path / "keystore.pem"
    pem.write_text(f"{key}\n{cert}\n")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    httpd = http.server.HTTPServer(("127.0.0.1", 0), FakeState)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    for running in serve(httpd):
        yield str(ca), running


def base(server: http.server.HTTPServer, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.server_address[1]}"


def test_without_authentication_the_user_is_a_header(server):
    assert drain("trino-k8s-charm", base(server)) is None

    (request,) = FakeState.seen
    assert request["path"] == "/v1/info/state"
    assert request["body"] == '"SHUTTING_DOWN"'
    assert request["X-Trino-User"] == "trino-k8s-charm"
    assert "Authorization" not in request


def test_with_a_password_over_https_verified_against_the_ca(ca_and_tls_server):
    ca, server = ca_and_tls_server

    problem = drain("trino-k8s-charm", credentials=Credentials("pw", base(server, "https"), ca))

    assert problem is None
    (request,) = FakeState.seen
    # base64("trino-k8s-charm:pw")
    assert request["Authorization"] == "Basic dHJpbm8tazhzLWNoYXJtOnB3"
    assert "X-Forwarded-Proto" not in request


def test_a_certificate_from_another_ca_is_refused(ca_and_tls_server):
    _, server = ca_and_tls_server
    other_key = PrivateKey.generate()
    other = Certificate.generate_self_signed_ca(
        CertificateRequestAttributes(common_name="other"), other_key, datetime.timedelta(days=1)
    )

    problem = drain(
        "trino-k8s-charm", credentials=Credentials("pw", base(server, "https"), str(other))
    )

    assert problem is not None
    assert problem.startswith("Trino did not answer the drain request")
    assert FakeState.seen == []


def test_behind_a_tls_proxy_the_request_says_it_was_https(server):
    credentials = Credentials("pw", base(server), forwarded_https=True)

    assert drain("trino-k8s-charm", credentials=credentials) is None

    (request,) = FakeState.seen
    assert request["X-Forwarded-Proto"] == "https"
    assert request["Authorization"].startswith("Basic ")


def test_a_refusal_says_the_http_code(server):
    FakeState.status = 403

    assert drain("trino-k8s-charm", base(server)) == "Trino refused to drain (HTTP 403)"


# The worker script (templates/run-worker.sh.j2) drains on SIGTERM with curl and the
# config the charm writes: it must send the very request drain() sends.
SAME = ("path", "body", "Content-Type", "X-Trino-User", "Authorization", "X-Forwarded-Proto")


def script_drain(files: dict[str, str], tmp_path) -> int:
    """Send the drain request as run-worker.sh does; curl's exit code."""
    config = files[shutdown.DRAIN_CONFIG]
    if shutdown.DRAIN_CA in files:
        (tmp_path / "ca.pem").write_text(files[shutdown.DRAIN_CA])
        config = config.replace(shutdown.DRAIN_CA, str(tmp_path / "ca.pem"))
    (tmp_path / "drain.curl").write_text(config)
    command = ["curl", "--config", str(tmp_path / "drain.curl")]
    return subprocess.run(command, check=False, timeout=30).returncode


def planned(credentials: Credentials) -> dict[str, str]:
    plan = with_drain_request(Plan(files={}, layer={}), "trino-k8s-charm", credentials)
    assert plan.files[shutdown.DRAIN_CONFIG].mode == 0o600
    return {path: str(file.content) for path, file in plan.files.items()}


def same_parts(request: dict[str, str]) -> dict[str, str | None]:
    return {key: request.get(key) for key in SAME}


def test_the_scripts_request_without_authentication_is_the_charms(server, tmp_path):
    assert drain("trino-k8s-charm", base(server)) is None
    assert script_drain(shutdown.drain_request("trino-k8s-charm", base(server)), tmp_path) == 0

    charm, script = FakeState.seen
    assert same_parts(script) == same_parts(charm)


def test_the_scripts_request_behind_a_tls_proxy_is_the_charms(server, tmp_path):
    # Quotes and backslashes survive curl's config syntax.
    credentials = Credentials('p"w\\d', base(server), forwarded_https=True)

    assert drain("trino-k8s-charm", credentials=credentials) is None
    assert script_drain(planned(credentials), tmp_path) == 0

    charm, script = FakeState.seen
    assert same_parts(script) == same_parts(charm)
    assert script["Authorization"].startswith("Basic ")


def test_the_scripts_request_over_https_is_the_charms(ca_and_tls_server, tmp_path):
    ca, server = ca_and_tls_server
    credentials = Credentials("pw", base(server, "https"), ca)

    assert drain("trino-k8s-charm", credentials=credentials) is None
    files = planned(credentials)
    assert script_drain(files, tmp_path) == 0

    charm, script = FakeState.seen
    assert same_parts(script) == same_parts(charm)
    # The certificate's name is resolved to this pod: it may be gone from DNS already.
    port = server.server_address[1]
    assert f'resolve = "127.0.0.1:{port}:127.0.0.1"' in files[shutdown.DRAIN_CONFIG]


def test_the_script_refuses_a_certificate_from_another_ca(ca_and_tls_server, tmp_path):
    _, server = ca_and_tls_server
    other = Certificate.generate_self_signed_ca(
        CertificateRequestAttributes(common_name="other"),
        PrivateKey.generate(),
        datetime.timedelta(days=1),
    )

    files = planned(Credentials("pw", base(server, "https"), str(other)))

    assert script_drain(files, tmp_path) != 0
    assert FakeState.seen == []
