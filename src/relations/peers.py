"""The `trino-peers` relation: application-wide state that must outlive any pod.

Catalogs added by action live in the peer application databag: Juju keeps it
across pod restarts, charm upgrades and leader changes. Only references to
credentials (secret ids) are stored there, never the credentials.

It also carries the restart lock: a unit that must restart Trino asks in its
unit databag, the leader grants one unit at a time in the application databag,
and the unit withdraws once Trino serves again (see `core.rolling`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import ops

from core.catalogs import ACTION_SOURCE, Catalog, CatalogDocumentError, from_document

logger = logging.getLogger(__name__)

ENDPOINT = "trino-peers"


@dataclasses.dataclass
class PeerAppData:
    """The peer application databag (each field JSON-encoded by ops)."""

    catalogs: dict[str, Any] = dataclasses.field(default_factory=dict)
    leader: str = ""  # the leader unit, so other units can point operators at it
    patched_resources: bool = False  # the StatefulSet carries resources the charm set
    # The StatefulSet's terminationGracePeriodSeconds as the charm last set it (0: never).
    patched_grace_seconds: int = 0
    # The pod the application's Service was narrowed to (the serving coordinator).
    service_pod: str = ""
    restart_granted: str = ""  # the one unit that may restart Trino now
    restart_epoch: int = 0  # bumped by the restart action: every unit restarts once more
    metastore_schema: str = ""  # the metastore database the leader created the Iceberg tables in


@dataclasses.dataclass
class PeerUnitData:
    """One unit's peer databag: its place in the rolling restart."""

    restart_request: bool = False  # Trino must restart to take new files
    restart_started: float = 0.0  # when this unit last restarted Trino under the lock
    restart_epoch: int = 0  # the application's restart_epoch this unit has restarted for
    restart_failed: str = ""  # why this unit's restart failed: the roll is paused here


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
    def app_data(self) -> PeerAppData:
        """The application databag (read it; change it with `save`)."""
        return self._data()

    @property
    def leader(self) -> str:
        """The unit that was leader when it last wrote, or empty."""
        return self._data().leader

    @property
    def patched_resources(self) -> bool:
        """Whether the charm last left resources on the StatefulSet."""
        return self._data().patched_resources

    @property
    def units(self) -> list[ops.Unit]:
        """Every unit of the application that Juju has told this unit about, itself included."""
        others = list(self.relation.units) if self.relation else []
        return [self._model.unit, *others]

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

    def save(self, *, catalogs: list[Catalog] | None = None, **fields: Any) -> None:
        """Write app data (leader only); the leader also records itself.

        Writes nothing when nothing changes, so a no-op hook leaves the databag alone.
        """
        if self.relation is None:
            raise RuntimeError("the peer relation is not there yet")
        if catalogs is not None:
            fields["catalogs"] = {catalog.name: catalog.to_data() for catalog in catalogs}
        data = dataclasses.replace(self._data(), leader=self._model.unit.name, **fields)
        if data != self._data() or not self.relation.data[self._model.app]:
            self.relation.save(data, self._model.app)
        self._loaded = data

    def unit_data(self, unit: ops.Unit | None = None) -> PeerUnitData:
        """A unit's peer databag (this unit's by default); empty when unreadable."""
        unit = unit or self._model.unit
        if self.relation is None or not self.relation.data[unit]:
            return PeerUnitData()
        try:
            return self.relation.load(PeerUnitData, unit)
        except (ValueError, TypeError) as error:
            logger.error("ignoring unreadable peer data of %s: %s", unit.name, error)
            return PeerUnitData()

    def save_unit(self, **fields: Any) -> None:
        """Change this unit's databag; nothing is written when nothing changes."""
        if self.relation is None:
            return
        current = self.unit_data()
        data = dataclasses.replace(current, **fields)
        if data != current:
            self.relation.save(data, self._model.unit)
