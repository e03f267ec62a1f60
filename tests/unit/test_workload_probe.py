"""probe() against a real HTTP server on loopback speaking Trino's /v1/info."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from workload import TrinoInfo, probe


class FakeInfo(http.server.BaseHTTPRequestHandler):
    body = b""
    state = b'"ACTIVE"'

    def do_GET(self):
        known = {"/v1/info": self.body, "/v1/info/state": self.state}
        self.send_response(200 if self.path in known else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(known.get(self.path, b""))

    def log_message(self, format, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), FakeInfo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def url(server: http.server.HTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1/info"


@pytest.mark.parametrize("starting", [True, False])
def test_probe_reads_starting_and_version(server, starting):
    FakeInfo.body = json.dumps(
        {"nodeVersion": {"version": "483"}, "coordinator": True, "starting": starting}
    ).encode()

    assert probe(url(server)) == TrinoInfo(starting=starting, version="483")


def test_probe_treats_garbage_as_not_answering(server):
    FakeInfo.body = b"<html>proxy error</html>"

    assert probe(url(server)) is None


def test_probe_of_a_closed_port_is_none():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), FakeInfo)
    port = httpd.server_address[1]
    httpd.server_close()

    assert probe(f"http://127.0.0.1:{port}/v1/info", timeout=1) is None
