"""Our requirer side of `postgresql_client` v0 (and `mysql_client`, the same protocol).

We ask for a database and for every credential as a Juju secret; the provider
answers with where the database is and the ids of the secrets that hold the
login (`secret-user`) and the TLS material (`secret-tls`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import ops

from core.databases import Database, split_endpoint

logger = logging.getLogger(__name__)

REQUESTED_SECRETS = ("username", "password", "tls", "tls-ca", "uris", "read-only-uris")
SHOWN = 80  # characters of a provider's value quoted in a status message, at most


def key(name: str, secret: bool = False) -> Any:
    """A text field whose databag key is `name` (a secret one is left out of `repr`)."""
    return dataclasses.field(default="", repr=not secret, metadata={"alias": name})


@dataclasses.dataclass
class DatabaseRequest:
    """What we write in our application databag."""

    database: str
    requested_secrets: list[str] = dataclasses.field(
        default_factory=lambda: list(REQUESTED_SECRETS), metadata={"alias": "requested-secrets"}
    )


@dataclasses.dataclass
class DatabaseOffer:
    """What the provider writes in its application databag (the keys we read)."""

    database: str = ""
    endpoints: str = ""
    read_only_endpoints: str = key("read-only-endpoints")
    version: str = ""
    secret_user: str = key("secret-user")
    secret_tls: str = key("secret-tls")
    # Older providers send the login as plain data instead of `secret-user`.
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)


def encode(value: Any) -> str:
    """Databag values: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def save_if_changed(relation: ops.Relation, data: Any, app: ops.Application) -> None:
    """Write our databag only when it would change (a no-op hook writes nothing)."""
    wanted = {
        field.metadata.get("alias", field.name): encode(getattr(data, field.name))
        for field in dataclasses.fields(data)
    }
    current = relation.data[app]
    if any(current.get(key) != value for key, value in wanted.items()):
        relation.save(data, app, encoder=encode)


class NotReady(NamedTuple):
    """Why a relation gives no database yet: a wait, or provider data the charm refuses."""

    message: str
    refused: bool = False


class DatabaseRequirer:
    """One `postgresql_client`-style endpoint, any number of related applications."""

    def __init__(self, model: ops.Model, endpoint: str, database_for: Callable[[str], str]):
        self._model = model
        self.endpoint = endpoint
        self._database_for = database_for

    @property
    def relations(self) -> list[ops.Relation]:
        """The endpoint's relations whose remote application is known."""
        return [r for r in self._model.relations.get(self.endpoint, []) if r.app is not None]

    def requested_database(self, relation: ops.Relation) -> str:
        """The database we ask a remote application for."""
        return self._database_for(relation.app.name if relation.app else "")

    def request(self) -> None:
        """Leader: ask every related provider for its database, credentials as secrets."""
        if not self._model.unit.is_leader():
            return
        for relation in self.relations:
            save_if_changed(
                relation, DatabaseRequest(self.requested_database(relation)), self._model.app
            )

    def databases(self) -> tuple[list[Database], list[str], list[str]]:
        """Every database ready to use, what the others wait for, and what they sent wrong."""
        ready, waiting, refused = [], [], []
        for _, found in self.lookups():
            if isinstance(found, Database):
                ready.append(found)
            else:
                (refused if found.refused else waiting).append(found.message)
        return ready, waiting, refused

    def lookups(self) -> list[tuple[ops.Relation, Database | NotReady]]:
        """Each relation's database, or why it gives none yet."""
        return [(relation, self._database(relation)) for relation in self.relations]

    def _database(self, relation: ops.Relation) -> Database | NotReady:
        app = relation.app.name if relation.app else ""
        wanted = self.requested_database(relation)
        try:
            offer = relation.load(DatabaseOffer, relation.app, decoder=str)
        except (TypeError, ValueError) as error:  # pragma: no cover (fields are all text)
            logger.warning("unreadable %s relation data from %s: %s", self.endpoint, app, error)
            offer = DatabaseOffer()
        hosts = tuple(host.strip() for host in offer.endpoints.split(",") if host.strip())
        plain = {"username": offer.username, "password": offer.password}
        if not hosts or not (offer.secret_user or all(plain.values())):
            return NotReady(
                f"{self.endpoint} relation with {app}: waiting for {app} to create "
                f"database {wanted!r} and share its endpoints and login secret"
            )
        if not all(split_endpoint(host) for host in hosts):
            # Anything but host:port would end up in a JDBC URL (`?sslmode=disable`...).
            shown = offer.endpoints[:SHOWN] + ("..." if len(offer.endpoints) > SHOWN else "")
            return NotReady(
                f"{self.endpoint} relation with {app}: its endpoints {shown!r} are not "
                f"host:port; fix the provider or `juju remove-relation {self._model.app.name} "
                f"{app}`",
                refused=True,
            )
        tls, tls_ca = False, ""
        if offer.secret_tls:
            try:
                content = self._model.get_secret(id=offer.secret_tls).get_content(refresh=True)
            except ops.ModelError as error:  # SecretNotFoundError is a ModelError
                logger.warning("cannot read TLS secret of %s: %s", app, error)
                return NotReady(f"{self.endpoint} relation with {app}: waiting for its TLS secret")
            tls = content.get("tls", "").strip().lower() in ("true", "enabled", "yes")
            tls_ca = content.get("tls-ca", "").strip()
            tls_ca = f"{tls_ca}\n" if tls_ca else ""
        return Database(
            endpoint=self.endpoint,
            app=app,
            name=offer.database or wanted,
            hosts=hosts,
            user_secret=offer.secret_user,
            tls=tls,
            tls_ca=tls_ca,
            relation_id=relation.id,
            login={} if offer.secret_user else plain,
        )
