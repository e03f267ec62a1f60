"""The `ingress` relation (ingress v2, requirer side): an external URL for clients.

Wire format (values JSON-encoded): our leader writes app data `name`, `model`,
`port` and `scheme`; every unit writes unit data `host` (its FQDN) and `ip` (its
pod IP, which gateway-api-integrator routes to). The provider answers with app
data `ingress` = `{"url": "https://..."}`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import NamedTuple
from urllib.parse import urlsplit

import ops

logger = logging.getLogger(__name__)

ENDPOINT = "ingress"
# What urlsplit gives as a hostname that clients can use: a DNS name or an IP address.
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")


def client_address(url: str) -> str | None:
    """``host:port`` that an http(s) URL reaches; None when it has no usable host or port."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in 0-65535
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(host):
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port or (443 if parts.scheme == 'https' else 80)}"


class IngressRequest(NamedTuple):
    """What our leader asks the ingress provider for."""

    name: str
    model: str
    port: int
    scheme: str = "http"


class UnitAddress(NamedTuple):
    """Where a unit's share of the clients goes (``ip`` empty: none is given)."""

    host: str
    ip: str


class IngressRequirer:
    """Our side of one ingress relation (limit 1)."""

    def __init__(self, model: ops.Model, endpoint: str = ENDPOINT):
        self._model = model
        self._endpoint = endpoint

    @property
    def relation(self) -> ops.Relation | None:
        """The ingress relation, if there is one."""
        return self._model.get_relation(self._endpoint)

    def publish(self, request: IngressRequest, address: UnitAddress) -> None:
        """Write our request (leader) and this unit's address.

        traefik validates every unit's databag and drops all of the application's
        routes when one has no `host`, so a unit never withdraws its `host`.
        """
        relation = self.relation
        if relation is None:
            return
        if self._model.unit.is_leader():
            _write(relation.data[self._model.app], request._asdict())
        unit_data = relation.data[self._model.unit]
        _write(unit_data, {"host": address.host, **({"ip": address.ip} if address.ip else {})})
        if not address.ip:
            unit_data.pop("ip", None)

    def url(self) -> str:
        """The URL the provider gives clients, or empty until it gave a usable one."""
        relation = self.relation
        if relation is None or relation.app is None:
            return ""
        raw = relation.data[relation.app].get("ingress", "")
        try:
            url = json.loads(raw).get("url", "") if raw else ""
        except (ValueError, AttributeError):
            logger.warning("ignoring unreadable ingress data: %r", raw)
            return ""
        if not isinstance(url, str) or (url and client_address(url) is None):
            logger.warning("ignoring an ingress URL without a usable host or port: %r", url)
            return ""
        return url

    def address(self) -> str:
        """``host:port`` of the URL the provider gives clients, or empty without one."""
        url = self.url()
        return (client_address(url) or "") if url else ""


def _write(databag: ops.RelationDataContent, values: dict[str, object]) -> None:
    for key, value in values.items():
        encoded = json.dumps(value)
        if databag.get(key) != encoded:
            databag[key] = encoded
