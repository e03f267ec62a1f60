"""The `trino-peers` relation: application-wide state that must outlive any pod.

Catalogs added by action live in the peer application databag: Juju keeps it
across pod restarts, charm upgrades and leader changes. Only references to
credentials (secret ids) are stored there, never the credentials.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import ops

from core.catalogs import Catalog, CatalogDocumentError, from_document

logger = logging.getLogger(__name__)

ENDPOINT = "trino-peers"
ACTION_SOURCE = "action"


@dataclasses.dataclass
class PeerAppData:
    """The peer application databag (each field JSON-encoded by ops)."""

    catalogs: dict[str, Any] = dataclasses.field(default_factory=dict)
    leader: str = ""  # the leader unit, so other units can point operators at it
    patched_resources: bool = False  # the StatefulSet carries resources the charm set
    metastore_schema: str = ""  # the metastore database the leader created the Iceberg tables in


class Peers:
    """Typed access to the peer relation, which may not exist yet early in a unit's life."""

    def __init__(self, model: ops.Model):
        self._model = model
        self.relation = model.get_relation(ENDPOINT)
        self._loaded: PeerAppData | None = None

    def _data(self) -> PeerAppData:
        if self._loaded is None:
            self._loaded = PeerAppData()
            if self.relation is not None:
                try:
                    self._loaded = self.relation.load(PeerAppData, self._model.app)
                except (ValueError, TypeError) as error:  # hand-edited, or a future version
                    logger.error("ignoring unreadable peer data: %s", error)
        return self._loaded

    @property
    def leader(self) -> str:
        """The unit that was leader when it last wrote, or empty."""
        return self._data().leader

    @property
    def patched_resources(self) -> bool:
        """Whether the charm last left resources on the StatefulSet."""
        return self._data().patched_resources

    @property
    def metastore_schema(self) -> str:
        """Which metastore database has the Iceberg tables (`lakehouse.bootstrap_key`)."""
        return self._data().metastore_schema

    def action_catalogs(self) -> list[Catalog]:
        """Catalogs added with the add-catalog action."""
        try:
            return from_document(self._data().catalogs, ACTION_SOURCE)
        except CatalogDocumentError as error:
            logger.error("ignoring unreadable action catalogs: %s", error)
            return []

    def save(
        self,
        *,
        catalogs: list[Catalog] | None = None,
        patched_resources: bool | None = None,
        metastore_schema: str | None = None,
    ) -> None:
        """Write app data (leader only); the leader also records itself."""
        if self.relation is None:
            raise RuntimeError("the peer relation is not there yet")
        data = self._data()
        data.leader = self._model.unit.name
        if catalogs is not None:
            data.catalogs = {catalog.name: catalog.to_data() for catalog in catalogs}
        if patched_resources is not None:
            data.patched_resources = patched_resources
        if metastore_schema is not None:
            data.metastore_schema = metastore_schema
        self.relation.save(data, self._model.app)
        self._loaded = data
