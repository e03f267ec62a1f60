"""Catalogs made by relations: databases, and the lakehouse (metastore + S3).

Gathers what the relations say, asks providers for what we need (leader), has
the leader create the metastore schema once, and hands the charm the catalogs
plus what blocks or waits, for its one status.
"""

from __future__ import annotations

import functools
import logging

import ops
import yaml

import juju_secrets
from core import lakehouse
from core.catalogs import Catalog
from core.databases import Database, database_catalog, database_names
from relations.peers import Peers
from relations.postgresql_client import DatabaseRequirer
from relations.s3 import S3Requirer

logger = logging.getLogger(__name__)

DATABASE_ENDPOINTS = ("postgresql", "mysql")
METASTORE = "metastore"
ENDPOINTS = (*DATABASE_ENDPOINTS, METASTORE, "s3-credentials")


def _yaml(text: str) -> object:
    try:
        return yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError:
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

    def reconcile(self) -> None:
        """Leader: publish our requests, and create the metastore schema when due."""
        for requirer in (*self._databases, self._metastore):
            requirer.request()
        self._s3.request(bucket=self._model.app.name)
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
    def _gathered(self) -> tuple[list[Catalog], list[str], list[str]]:
        catalogs: list[Catalog] = []
        blocked = [p for p in (self._names_problem, self._name_problem) if p]
        waiting: list[str] = []
        for requirer in self._databases:
            ready, pending = requirer.databases()
            catalogs += [database_catalog(database) for database in ready]
            waiting += pending
        metastore, pending = self._metastore_database
        waiting += pending
        storage = self._s3.storage()
        if isinstance(storage, str):
            waiting.append(storage)
            storage = None
        half = lakehouse.missing_half(
            metastore=bool(self._metastore.relations),
            storage=self._s3.relation is not None,
            name=self.name,
            app=self._model.app.name,
        )
        if half:
            blocked.append(half)
        if self._bootstrap_error:
            blocked.append(self._bootstrap_error)
        elif metastore and self._peers.metastore_schema != lakehouse.bootstrap_key(metastore):
            waiting.append(
                f"lakehouse catalog {self.name!r}: waiting for the leader to create the "
                "Iceberg tables in the metastore database"
            )
        elif metastore and storage and not self._name_problem:
            catalogs.append(lakehouse.lakehouse_catalog(self.name, metastore, storage))
        for message in blocked + waiting:
            logger.info("%s", message)
        return catalogs, blocked, waiting

    @functools.cached_property
    def _metastore_database(self) -> tuple[Database | None, list[str]]:
        ready, pending = self._metastore.databases()
        return (ready[0] if ready else None), pending

    def catalogs(self) -> list[Catalog]:
        """Catalogs every ready relation makes."""
        return self._gathered[0]

    def problems(self) -> tuple[list[str], list[str]]:
        """What the operator must fix (blocked), and what the relations still wait for."""
        return self._gathered[1], self._gathered[2]
