"""Trino's client protocol, small enough to read: POST /v1/statement, follow nextUri.

The `trino` package refuses a password over plain HTTP, but behind a TLS-terminating
ingress that is exactly what Trino sees (plain HTTP plus `X-Forwarded-Proto: https`).
This client sends what such an ingress would forward.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any


class QueryError(Exception):
    """Trino answered the query with an error (or an HTTP error)."""

    def __init__(self, message: str, status: int | None = None, name: str = ""):
        super().__init__(message)
        self.status = status
        self.error_name = name  # Trino's errorName, as the `trino` package calls it


def execute(
    base_url: str,
    sql: str,
    user: str = "live-test",
    password: str | None = None,
    forwarded_https: bool = False,
    ca_file: str | None = None,
    timeout: float = 600,
) -> list[list[Any]]:
    """Run `sql`; its rows, or QueryError with Trino's message."""
    headers = {"X-Trino-User": user, "Content-Type": "text/plain"}
    if password is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    if forwarded_https:
        headers["X-Forwarded-Proto"] = "https"
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        f"{base_url}/v1/statement", data=sql.encode(), headers=headers, method="POST"
    )
    rows: list[list[Any]] = []
    while True:
        try:
            with urllib.request.urlopen(request, timeout=60, context=context) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            raise QueryError(f"HTTP {error.code}: {error.read()[:300]!r}", error.code) from error
        rows.extend(body.get("data") or [])
        if "error" in body:
            error = body["error"]
            raise QueryError(error.get("message", str(error)), name=error.get("errorName", ""))
        next_uri = body.get("nextUri")
        if not next_uri:
            return rows
        if time.monotonic() > deadline:
            raise QueryError(f"query still running after {timeout}s")
        if forwarded_https and next_uri.startswith("https://"):
            # Trino names the forwarded scheme; the "ingress" here is the test itself.
            next_uri = f"{base_url}/{next_uri.split('/', 3)[3]}"
        request = urllib.request.Request(next_uri, headers=headers)
