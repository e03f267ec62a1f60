"""The `trino-catalog` relation (provider side), with the keys of Charmed Trino's interface.

The requirer (Superset, Ranger...) writes app data `app_name`. Our leader writes
plain app data: `trino_url` (``host:port``), `trino_catalogs` (a JSON list of
``{"name", "connector", "description"}`` sorted by name) and
`trino_credentials_secret_id`: a Juju secret granted to that relation alone, with
the `username` and `password` of a Trino user made for that relation. The user
and its secret go when the relation goes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import NamedTuple

import ops

logger = logging.getLogger(__name__)

ENDPOINT = "trino-catalog"
SECRET_LABEL = "trino-catalog-{id}"  # noqa: S105  (a label, not a password)


class CatalogInfo(NamedTuple):
    """One catalog as a client sees it: never a credential."""

    name: str
    connector: str
    description: str


class TrinoCatalogProvider:
    """Users and data for every related client application."""

    def __init__(self, model: ops.Model, endpoint: str = ENDPOINT):
        self._model = model
        self._endpoint = endpoint
        self._gone: set[int] = set()

    @property
    def relations(self) -> list[ops.Relation]:
        """The related client applications (not one that is leaving)."""
        return [
            relation
            for relation in self._model.relations.get(self._endpoint, [])
            if relation.app is not None and relation.id not in self._gone
        ]

    def users(self) -> dict[str, str]:
        """Each client's Trino user and password; the leader makes missing ones."""
        found = {}
        for relation in self.relations:
            content = self._credentials(relation)
            if content:
                found[content["username"]] = content["password"]
        return found

    def publish(self, url: str, catalogs: Iterable[CatalogInfo]) -> None:
        """Leader: hand every client the URL, the catalogs and its own secret."""
        listed = json.dumps(
            [c._asdict() for c in sorted(catalogs, key=lambda c: c.name)],
            sort_keys=True,
        )
        for relation in self.relations:
            secret = self._secret(relation)
            if secret is None:
                continue
            secret_id = str(secret.id or secret.get_info().id)
            databag = relation.data[self._model.app]
            if databag.get("trino_credentials_secret_id") != secret_id:
                secret.grant(relation)
            desired = {
                "trino_url": url,
                "trino_catalogs": listed,
                "trino_credentials_secret_id": secret_id,
            }
            for key, value in desired.items():
                if databag.get(key) != value:
                    databag[key] = value

    def forget(self, relation: ops.Relation) -> None:
        """The relation is broken: its user and secret go."""
        self._gone.add(relation.id)
        if not self._model.unit.is_leader():
            return
        try:
            secret = self._model.get_secret(label=SECRET_LABEL.format(id=relation.id))
        except ops.SecretNotFoundError:
            return
        secret.remove_all_revisions()
        logger.info("removed the Trino user of relation %s", relation.id)

    def _secret(self, relation: ops.Relation) -> ops.Secret | None:
        label = SECRET_LABEL.format(id=relation.id)
        try:
            return self._model.get_secret(label=label)
        except ops.SecretNotFoundError:
            if not self._model.unit.is_leader():
                return None
        import secrets  # noqa: PLC0415

        app = relation.app.name if relation.app else "client"
        content = {"username": f"{app}-{relation.id}", "password": secrets.token_urlsafe(24)}
        return self._model.app.add_secret(content, label=label)

    def _credentials(self, relation: ops.Relation) -> dict[str, str]:
        secret = self._secret(relation)
        if secret is None:
            return {}
        content = secret.get_content(refresh=True)
        return content if {"username", "password"} <= set(content) else {}
