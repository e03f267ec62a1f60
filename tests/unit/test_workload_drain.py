"""drain() against real loopback servers: by header, with a password over HTTPS, behind a proxy."""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest
from charmlibs.interfaces.tls_certificates import (
    Certificate,
    CertificateRequestAttributes,
    PrivateKey,
)

from workload import Credentials, drain


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
