"""Catalogs made by relations: databases, and the lakehouse (metastore + S3).

Gathers what the relations say, asks providers for what we need (leader), has
the leader create the metastore schema once, and hands the charm the catalogs
plus what blocks or waits, for its one status.

A provider can be incomplete for a moment (a secret not readable yet, blank
endpoints or keys). The leader keeps each relation's last good catalog in an
application secret (it holds credentials) and goes on using it, saying `waiting`,
until the provider is whole again: only removing the relation removes it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from typing import NamedTuple

import ops

import juju_secrets
from core import lakehouse, yamltext
from core.catalogs import Catalog
from core.databases import Database, database_catalog, database_names
from relations.peers import Peers
from relations.postgresql_client import DatabaseRequirer
from relations.s3 import S3Requirer

logger = logging.getLogger(__name__)

DATABASE_ENDPOINTS = ("postgresql", "mysql")
METASTORE = "metastore"
ENDPOINTS = (*DATABASE_ENDPOINTS, METASTORE, "s3-credentials")
LAST_GOOD_LABEL = "trino-relation-catalogs"
KEPT = "Trino keeps the last good catalog until then"


class LastGood:
    """Each relation's last good catalog, in an application secret (leader only)."""

    def __init__(self, model: ops.Model):
        self._model = model
        self._secret: ops.Secret | None = None
        self._saved: str | None = None  # the secret's content, read once a hook

    def _read(self) -> str:
        if self._saved is None:
            self._saved = "{}"
            try:
                self._secret = self._model.get_secret(label=LAST_GOOD_LABEL)
                self._saved = self._secret.get_content(refresh=True).get("catalogs", "{}")
            except ops.SecretNotFoundError:
                pass
        return self._saved

    def get(self, key: str) -> Catalog | None:
        """The catalog the relation (``key``) last made, if the leader kept one."""
        try:
            data = json.loads(self._read()).get(key)
            return Catalog(**data) if isinstance(data, dict) else None
        except (ValueError, TypeError) as error:  # written by another version
            logger.warning("ignoring the kept relation catalogs: %s", error)
            return None

    def save(self, catalogs: dict[str, Catalog]) -> None:
        """Keep exactly these catalogs, by relation key; nothing is written when unchanged."""
        text = json.dumps(
            {key: dataclasses.asdict(catalog) for key, catalog in catalogs.items()},
            sort_keys=True,
        )
        if text == self._read():
            return
        if self._secret is None:
            self._secret = self._model.app.add_secret({"catalogs": text}, label=LAST_GOOD_LABEL)
        else:
            self._secret.set_content({"catalogs": text})
        self._saved = text


# A relation's key, the catalog it makes now (None: not ready), and what it waits for.
Made = tuple[str, "Catalog | None", list[str]]


class Gathered(NamedTuple):
    """What the relations make now."""

    catalogs: list[Catalog]
    blocked: list[str]
    waiting: list[str]
    keep: dict[str, Catalog]  # relation key -> the catalog to keep as its last good one


def _yaml(text: str) -> object:
    try:
        return yamltext.load(text) if text.strip() else {}
    except yamltext.YAMLError:
        return None  # refused as "not a mapping"


class RelationCatalogs:
    """The relation side of the catalog set."""

    def __init__(self, model: ops.Model, peers: Peers):
        self._model = model
        self._peers = peers
        names, problem = database_names(_yaml(str(model.config.get("database-names", ""))))
        self._names_problem = problem
        self._databases = [
            DatabaseRequirer(model, endpoint, lambda app: names.get(app, app))
            for endpoint in DATABASE_ENDPOINTS
        ]
        # Its own database, so a server related on both endpoints keeps the two apart.
        metastore_database = f"{model.app.name}-metastore"
        self._metastore = DatabaseRequirer(model, METASTORE, lambda _: metastore_database)
        self._s3 = S3Requirer(model)
        self.name, self._name_problem = lakehouse.catalog_name(
            str(model.config.get("lakehouse-catalog-name", ""))
        )
        self._bootstrap_error: str | None = None
        self._last_good = LastGood(model)

    def reconcile(self) -> None:
        """Leader: publish our requests, create the metastore schema when due, keep catalogs."""
        for requirer in (*self._databases, self._metastore):
            requirer.request()
        self._s3.request(bucket=self._model.app.name)
        self._bootstrap()
        # Without any of these relations there is nothing to keep (entries of removed
        # relations are dropped at the next save): a hook without them reads no secret.
        related = any(self._model.relations.get(endpoint) for endpoint in ENDPOINTS)
        if related and self._model.unit.is_leader():
            self._last_good.save(self._gathered.keep)

    def _bootstrap(self) -> None:
        """Leader: create the Iceberg tables in a new metastore database, once."""
        ready = self._metastore_database[0]
        if ready is None or not self._model.unit.is_leader() or self._peers.relation is None:
            return
        if self._peers.metastore_schema == lakehouse.bootstrap_key(ready):
            return
        from metastore import MetastoreError, create_schema  # noqa: PLC0415

        login = ready.login
        if ready.user_secret:
            login = juju_secrets.fetch(self._model, [ready.user_secret])[ready.user_secret]
        try:
            if isinstance(login, str):
                raise MetastoreError(login)
            create_schema(ready, login.get("username", ""), login.get("password", ""))
        except MetastoreError as error:
            self._bootstrap_error = (
                f"lakehouse catalog {self.name!r}: {error}; check the metastore relation with "
                f"{ready.app} (the charm retries on every hook)"
            )
        else:
            self._peers.save(metastore_schema=lakehouse.bootstrap_key(ready))
        self.__dict__.pop("_gathered", None)  # computed before the bootstrap: stale

    @functools.cached_property
    def _gathered(self) -> Gathered:
        blocked = [p for p in (self._names_problem, self._name_problem) if p]
        waiting: list[str] = []
        keep: dict[str, Catalog] = {}
        made = [*self._database_catalogs(blocked), self._lakehouse(blocked)]
        for key, catalog, waits in made:
            if catalog is None and key and self._model.unit.is_leader():
                catalog = self._last_good.get(key)  # not ready now: its last good one
                waits = [f"{message}; {KEPT}" for message in waits] if catalog else waits
            waiting += waits
            if catalog is not None:
                keep[key] = catalog
        for message in blocked + waiting:
            logger.info("%s", message)
        return Gathered(list(keep.values()), blocked, waiting, keep)

    def _database_catalogs(self, blocked: list[str]) -> list[Made]:
        """Each database relation's catalog, or what it waits for; adds to ``blocked``."""
        made: list[Made] = []
        for requirer in self._databases:
            for relation, found in requirer.lookups():
                key = f"{requirer.endpoint}:{relation.id}"
                if isinstance(found, Database):
                    made.append((key, database_catalog(found), []))
                elif found.refused:
                    blocked.append(found.message)  # refused: blocked, on its last good one
                    made.append((key, None, []))
                else:
                    made.append((key, None, [found.message]))
        return made

    def _lakehouse(self, blocked: list[str]) -> Made:
        """The lakehouse (keyed by both relations), or what it waits for; adds to ``blocked``."""
        metastore, waiting, refused = self._metastore_database
        blocked += refused
        storage = self._s3.storage()
        if isinstance(storage, str):
            waiting = [*waiting, storage]
            storage = None
        half = lakehouse.missing_half(
            metastore=bool(self._metastore.relations),
            storage=self._s3.relation is not None,
            name=self.name,
            app=self._model.app.name,
        )
        if half or self._s3.relation is None:
            blocked += [half] if half else []
            return "", None, waiting
        key = f"lakehouse:{self._metastore.relations[0].id}:{self._s3.relation.id}"
        if self._bootstrap_error:
            blocked.append(self._bootstrap_error)
        elif metastore and self._peers.metastore_schema != lakehouse.bootstrap_key(metastore):
            waiting.append(
                f"lakehouse catalog {self.name!r}: waiting for the leader to create the "
                "Iceberg tables in the metastore database"
            )
        if metastore and storage and not waiting and not self._bootstrap_error:
            if not self._name_problem:
                return key, lakehouse.lakehouse_catalog(self.name, metastore, storage), []
        return key, None, waiting

    @functools.cached_property
    def _metastore_database(self) -> tuple[Database | None, list[str], list[str]]:
        ready, pending, refused = self._metastore.databases()
        return (ready[0] if ready else None), pending, refused

    def catalogs(self) -> list[Catalog]:
        """Catalogs every ready relation makes, and the last good ones of waiting relations."""
        return self._gathered.catalogs

    def problems(self) -> tuple[list[str], list[str]]:
        """What the operator must fix (blocked), and what the relations still wait for."""
        return self._gathered.blocked, self._gathered.waiting
