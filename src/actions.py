"""The charm's actions: a rolling restart, and the catalogs added by action.

Each changes application-wide state in the peer relation, so each runs on the
leader, and then reconciles in the same hook so its effect starts at once.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import ops

import juju_secrets
from core import catalogs
from core.config import Role

if TYPE_CHECKING:
    from charm import TrinoK8sCharm


@dataclasses.dataclass(frozen=True)
class AddCatalogParams:
    """Parameters of the add-catalog action."""

    name: str
    connector: str
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)
    secret: str = ""
    secret_properties: dict[str, Any] = dataclasses.field(default_factory=dict)

    def catalog(self) -> catalogs.Catalog:
        """The catalog, or CatalogDocumentError (a ValueError) naming what is wrong."""
        entry = {
            "connector": self.connector,
            "properties": catalogs.flatten(self.properties),
            "secret": self.secret,
            "secret-properties": catalogs.flatten(self.secret_properties),
        }
        return catalogs.from_document({self.name: entry}, catalogs.ACTION_SOURCE)[0]


class Actions(ops.Object):
    """restart, add-catalog, remove-catalog and list-catalogs."""

    def __init__(self, charm: TrinoK8sCharm):
        super().__init__(charm, "actions")
        self._charm = charm
        charm.framework.observe(charm.on.restart_action, self._on_restart)
        charm.framework.observe(charm.on.add_catalog_action, self._on_add_catalog)
        charm.framework.observe(charm.on.remove_catalog_action, self._on_remove_catalog)
        charm.framework.observe(charm.on.list_catalogs_action, self._on_list_catalogs)

    def _on_restart(self, event: ops.ActionEvent) -> None:
        """Restart every unit of the application, one at a time, draining workers first."""
        if not self._leader_only(event):
            return
        peers = self._charm.peers
        epoch = peers.app_data.restart_epoch + 1
        peers.save(restart_epoch=epoch)
        self._apply_now()
        holder = peers.app_data.restart_granted
        outcome = {}
        for unit in sorted(peers.units, key=lambda unit: unit.name):
            done = peers.unit_data(unit).restart_epoch >= epoch
            outcome[unit.name] = (
                "restarting now" if unit.name == holder else "restarted" if done else "queued"
            )
        event.log("units restart one at a time; `juju status` follows the roll")
        event.set_results({"units": json.dumps(outcome, sort_keys=True)})

    def _on_add_catalog(self, event: ops.ActionEvent) -> None:
        if not self._leader_only(event) or not self._not_worker(event):
            return
        params = event.load_params(AddCatalogParams, errors="fail")
        try:
            catalog = params.catalog()
        except catalogs.CatalogDocumentError as error:
            event.fail(str(error))
            return
        sources, _ = self._charm.snapshot.catalog_sources()
        secrets, refused = juju_secrets.for_catalogs(self.model, [catalog])
        problems = catalogs.admission_problems(
            catalog,
            [c for source in sources for c in source],
            secrets,
            refused,
            self._charm.workload.connectors(),
        )
        if problems:
            event.fail("; ".join(problems))
            return
        peers = self._charm.peers
        kept = [c for c in peers.action_catalogs() if c.name != catalog.name]
        peers.save(catalogs=[*kept, catalog])
        self._apply_now()
        event.set_results({"catalog": catalog.name, "connector": catalog.connector})

    def _on_remove_catalog(self, event: ops.ActionEvent) -> None:
        if not self._leader_only(event) or not self._not_worker(event):
            return
        name = str(event.params["name"])
        peers = self._charm.peers
        added = peers.action_catalogs()
        if name not in {catalog.name for catalog in added}:
            event.fail(f"no catalog {name!r} was added by add-catalog; see list-catalogs")
            return
        peers.save(catalogs=[catalog for catalog in added if catalog.name != name])
        self._apply_now()
        event.set_results({"removed": name})

    def _on_list_catalogs(self, event: ops.ActionEvent) -> None:
        sources, problems = self._charm.snapshot.catalog_sources()
        listed = sorted(
            (catalog.name, catalog.connector, catalog.source)
            for source in sources
            for catalog in source
        )
        rows = [{"name": n, "connector": c, "source": s} for n, c, s in listed]
        event.set_results({"catalogs": json.dumps(rows), "count": len(rows)})
        for problem in problems:
            event.log(problem)

    def _leader_only(self, event: ops.ActionEvent) -> bool:
        charm = self._charm
        if charm.unit.is_leader() and charm.peers.relation:
            return True
        leader = charm.peers.leader or f"{charm.app.name}/leader"
        event.fail(
            f"{event.handle.kind.removesuffix('_action').replace('_', '-')} changes the whole "
            f"application: run it on the leader, {leader} (`juju run {charm.app.name}/leader ...`)"
            if not charm.unit.is_leader()
            else "the peer relation is not set up yet; retry in a moment"
        )
        return False

    def _not_worker(self, event: ops.ActionEvent) -> bool:
        charm = self._charm
        if charm.config.get("charm-function") != Role.WORKER.value:
            return True
        relation = charm.cluster.relation
        coordinator = relation.app.name if relation and relation.app else None
        event.fail(
            "a worker takes its catalogs from its coordinator: run this on "
            f"{f'{coordinator}/leader' if coordinator else 'the coordinator application'}"
        )
        return False

    def _apply_now(self) -> None:
        """Apply an action's change in the same hook, from a fresh snapshot."""
        self._charm.snapshot.forget()
        self._charm.reconcile()
