"""Databases handed over by related charms (postgresql_client, mysql_client) as catalogs.

The charm reads the relation data into a `Database`; the functions here turn it
into the `Catalog` Trino gets. The login stays in the provider's Juju secret,
which the catalog names: it is read only when the file is written.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from core.catalogs import CERTS_DIR, Catalog

# What a `secret-user` secret holds, by the catalog property it fills.
LOGIN = {"connection-user": "username", "connection-password": "password"}
# One of a provider's `endpoints`: a DNS name, an IPv4 or a bracketed IPv6 address, and an
# optional port; ASCII only, nothing else (no path, no JDBC parameters).
_ENDPOINT = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
MAX_PORT = 65535


def split_endpoint(endpoint: str) -> tuple[str, int | None] | None:
    """``host:port`` as its host and port (None: no port), or None if it is anything else."""
    match = _ENDPOINT.fullmatch(endpoint)
    if match is None:
        return None
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port <= MAX_PORT:
        return None
    return match["host"], port


@dataclasses.dataclass(frozen=True)
class Database:
    """A database a provider created for us: where it is and which secret holds the login."""

    endpoint: str  # our endpoint: postgresql, mysql or metastore
    app: str  # the remote application
    name: str  # the database
    hosts: tuple[str, ...]  # host:port, primary first
    user_secret: str  # the Juju secret with username and password; empty: `login` has them
    tls: bool = False
    tls_ca: str = ""  # PEM, when the provider gave one
    relation_id: int = 0  # a new relation may mean a new, empty database
    # username and password, when an older provider sent them as plain relation data
    login: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    def login_fields(self, prefix: str = "") -> dict[str, Any]:
        """The Catalog fields that log in: the secret and its keys, or the plain login."""
        names = {f"{prefix}{prop}": key for prop, key in LOGIN.items()}
        if self.user_secret:
            return {"secret": self.user_secret, "secret_properties": names}
        return {"credentials": {prop: self.login.get(key, "") for prop, key in names.items()}}

    @property
    def host(self) -> str:
        """Host name of the first endpoint (an IPv6 address in brackets)."""
        return (split_endpoint(self.hosts[0]) or (self.hosts[0], None))[0]

    @property
    def port(self) -> int:
        """Port of the first endpoint (the engine's default when none is given)."""
        port = (split_endpoint(self.hosts[0]) or ("", None))[1]
        return port or (3306 if self.endpoint == "mysql" else 5432)


def database_names(document: object) -> tuple[dict[str, str], str | None]:
    """The `database-names` option (parsed YAML): related application -> database."""
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in document.items()
    ):
        return {}, (
            "database-names: must be a YAML mapping of related application to database "
            "name, e.g. `{postgresql-k8s: sales}`"
        )
    return dict(document), None


def catalog_name(app: str) -> str:
    """The catalog a related application makes: `postgresql-k8s` -> `postgresql_k8s`."""
    return re.sub(r"[^a-z0-9_]", "_", app.lower())


def ca_path(catalog: str) -> str:
    """Where a catalog's CA certificate goes in the container."""
    return f"{CERTS_DIR}/{catalog}-ca.pem"


def postgresql_url(database: Database, ca_file: str) -> str:
    """The JDBC URL of a PostgreSQL database; with TLS, verified against the provider's CA."""
    url = f"jdbc:postgresql://{','.join(database.hosts)}/{quote(database.name, safe='')}"
    if not database.tls:
        return url
    if database.tls_ca:
        return f"{url}?ssl=true&sslmode=verify-full&sslrootcert={ca_file}"
    return f"{url}?ssl=true&sslmode=require"


def database_catalog(database: Database) -> Catalog:
    """The `postgresql` or `mysql` catalog of a related database."""
    name = catalog_name(database.app)
    files = {}
    if database.endpoint == "mysql":
        # Trino's MySQL connector reads every database of the server: no name in the URL.
        # Connector/J takes no PEM trust store: TLS is required, not verified against the CA.
        url = f"jdbc:mysql://{database.host}:{database.port}"
        if database.tls:
            url += "?sslMode=REQUIRED"
    else:
        url = postgresql_url(database, ca_path(name))
        if database.tls and database.tls_ca:
            files[ca_path(name)] = database.tls_ca
    return Catalog(
        name=name,
        connector="mysql" if database.endpoint == "mysql" else "postgresql",
        source=f"{database.endpoint}:{database.app}",
        properties={"connection-url": url},
        files=files,
        **database.login_fields(),
    )
