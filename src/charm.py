#!/usr/bin/env python3
"""The trino-k8s charm: wires Juju events to one reconcile and one status."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import ops
import yaml

import juju_secrets
from core import catalogs
from core.config import CharmConfig, ConfigError
from core.plan import HTTP_PORT, SERVICE, NodeInputs, plan_node
from relation_catalogs import ENDPOINTS as CATALOG_RELATIONS
from relation_catalogs import RelationCatalogs
from relations.peers import ACTION_SOURCE, Peers
from workload import Workload, probe

logger = logging.getLogger(__name__)


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
        return catalogs.from_document({self.name: entry}, ACTION_SOURCE)[0]


class TrinoK8sCharm(ops.CharmBase):
    """Trino on Kubernetes."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.workload = Workload(self.unit.get_container("trino"))
        self.peers = Peers(self.model)
        self.relation_catalogs = RelationCatalogs(self.model, self.peers)
        self._inputs: NodeInputs | ConfigError | None = None
        self._resource_problem: str | None = None
        for event in (
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.start,
            self.on.leader_elected,
            self.on.update_status,
            self.on.secret_changed,
            self.on.trino_peers_relation_changed,
            self.on.trino_pebble_ready,
            self.on.trino_pebble_check_failed,
            self.on.trino_pebble_check_recovered,
        ):
            framework.observe(event, self._reconcile)
        for endpoint in CATALOG_RELATIONS:
            framework.observe(self.on[endpoint].relation_created, self._reconcile)
            framework.observe(self.on[endpoint].relation_changed, self._reconcile)
            framework.observe(self.on[endpoint].relation_broken, self._reconcile)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(self.on.restart_action, self._on_restart_action)
        framework.observe(self.on.add_catalog_action, self._on_add_catalog_action)
        framework.observe(self.on.remove_catalog_action, self._on_remove_catalog_action)
        framework.observe(self.on.list_catalogs_action, self._on_list_catalogs_action)

    # The snapshot: everything Juju knows that the node depends on.

    def _catalog_sources(self) -> tuple[list[list[catalogs.Catalog]], list[str]]:
        """Catalogs by source, and why `catalog-config` could not be read, if it could not.

        `catalog-config` is read apart from the other options: a bad catalog must
        not stop them from applying, nor they it.
        """
        text = str(self.config.get("catalog-config", ""))
        try:
            document = yaml.safe_load(text) if text.strip() else None
            from_config, problems = catalogs.from_document(document, "config"), []
        except (yaml.YAMLError, catalogs.CatalogDocumentError) as error:
            from_config, problems = [], [f"catalog-config: {str(error).splitlines()[0]}"]
        return [
            from_config,
            self.peers.action_catalogs(),
            self.relation_catalogs.catalogs(),
        ], problems

    def _snapshot(self) -> NodeInputs | ConfigError:
        if self._inputs is None:
            try:
                config = self.load_config(CharmConfig)
            except ConfigError as error:
                self._inputs = error
                return error
            sources, problems = self._catalog_sources()
            secret_ids = {
                catalog.secret for source in sources for catalog in source if catalog.secret
            }
            catalog_set = catalogs.catalog_set(sources, juju_secrets.fetch(self.model, secret_ids))
            if problems:
                catalog_set = catalogs.CatalogSet({}, problems + catalog_set.problems)
            self._inputs = NodeInputs(config, self.model.name, self.unit.name, catalog_set)
        return self._inputs

    # Reconcile: make Kubernetes and the container match the snapshot.

    def _reconcile(self, _: ops.EventBase | None = None) -> None:
        self.unit.set_ports(HTTP_PORT)
        if self.unit.is_leader() and self.peers.relation and self.peers.leader != self.unit.name:
            self.peers.save()
        self.relation_catalogs.reconcile()
        inputs = self._snapshot()
        if isinstance(inputs, ConfigError):
            logger.warning("not applying the config: %s", inputs)
            return
        for problem in inputs.catalogs.problems:
            logger.warning("keeping the current catalogs: %s", problem)
        self._reconcile_resources(inputs.config)
        if not self.workload.container.can_connect():
            return
        plan = plan_node(inputs)
        if plan.waiting:
            if self.workload.is_running():
                logger.info("stopping Trino: %s", plan.waiting)
                self.workload.container.stop(SERVICE)
            return
        self.workload.apply(plan)

    def _reconcile_resources(self, config: CharmConfig) -> None:
        """Patch the pod resources: leader only, and only when some are (or were) set.

        The peer flag records that the charm patched the StatefulSet, so clearing
        the options removes the resources again, while an application that never
        set them never pays for lightkube or the API.
        """
        if not self.unit.is_leader() or not (config.resources or self.peers.patched_resources):
            return
        from k8s_resources import ResourcePatchError, apply_resources  # noqa: PLC0415

        try:
            apply_resources(self.app.name, self.model.name, config.resources)
        except ResourcePatchError as error:
            self._resource_problem = str(error)
            return
        if self.peers.relation and self.peers.patched_resources != bool(config.resources):
            self.peers.save(patched_resources=bool(config.resources))

    # Status: one place decides what the operator reads.

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(self._status())

    def _status(self) -> ops.StatusBase:
        """Operator input problems first (they need action), then the workload's state."""
        inputs = self._snapshot()
        if isinstance(inputs, ConfigError):
            return ops.BlockedStatus(_first_of(inputs.problems))
        if self._resource_problem:
            return ops.BlockedStatus(f"workload resources: {self._resource_problem}")
        if inputs.catalogs.problems:
            return ops.BlockedStatus(_first_of(inputs.catalogs.problems))
        blocked, waiting = self.relation_catalogs.problems()
        if blocked:
            return ops.BlockedStatus(_first_of(blocked))
        status = self._workload_status(inputs)
        if waiting and isinstance(status, ops.ActiveStatus):
            return ops.WaitingStatus(_first_of(waiting))
        return status

    def _workload_status(self, inputs: NodeInputs) -> ops.StatusBase:  # noqa: PLR0911
        if not self.workload.container.can_connect():
            return ops.WaitingStatus("waiting for the trino container to start")
        plan = plan_node(inputs)
        if plan.waiting:
            return ops.WaitingStatus(plan.waiting)
        if not self.workload.is_running():
            return ops.BlockedStatus(
                f"Trino is {self.workload.service_status() or 'not set up'}; see "
                f"`juju ssh --container trino {self.unit.name} pebble logs trino`"
            )
        info = probe()
        if info is None:
            return ops.WaitingStatus("Trino is starting (not answering on port 8080 yet)")
        if info.version:
            self.unit.set_workload_version(info.version)
        if info.starting:
            return ops.WaitingStatus("Trino is starting")
        if inputs.config.role.value == "coordinator":
            return ops.ActiveStatus("coordinator: queries run once workers join")
        return ops.ActiveStatus()

    # Actions.

    def _on_restart_action(self, event: ops.ActionEvent) -> None:
        if not self.workload.container.can_connect():
            event.fail("the trino container is not reachable yet; retry once the unit is up")
            return
        if SERVICE not in self.workload.container.get_plan().services:
            event.fail(f"Trino is not set up on {self.unit.name}: {self._status().message}")
            return
        event.log(f"restarting Trino on {self.unit.name}")
        self.workload.restart()
        event.set_results({"restarted": self.unit.name})

    def _leader_only(self, event: ops.ActionEvent) -> bool:
        if self.unit.is_leader() and self.peers.relation:
            return True
        leader = self.peers.leader or f"{self.app.name}/leader"
        event.fail(
            f"{event.handle.kind.removesuffix('_action').replace('_', '-')} changes the whole "
            f"application: run it on the leader, {leader} (`juju run {self.app.name}/leader ...`)"
            if not self.unit.is_leader()
            else "the peer relation is not set up yet; retry in a moment"
        )
        return False

    def _on_add_catalog_action(self, event: ops.ActionEvent) -> None:
        if not self._leader_only(event):
            return
        params = event.load_params(AddCatalogParams, errors="fail")
        try:
            catalog = params.catalog()
        except catalogs.CatalogDocumentError as error:
            event.fail(str(error))
            return
        sources, _ = self._catalog_sources()
        secrets = juju_secrets.fetch(self.model, [catalog.secret] if catalog.secret else [])
        problems = catalogs.admission_problems(
            catalog, [c for source in sources for c in source], secrets
        )
        if problems:
            event.fail("; ".join(problems))
            return
        kept = [c for c in self.peers.action_catalogs() if c.name != catalog.name]
        self.peers.save(catalogs=[*kept, catalog])
        self._refresh_and_reconcile()
        event.set_results({"catalog": catalog.name, "connector": catalog.connector})

    def _on_remove_catalog_action(self, event: ops.ActionEvent) -> None:
        if not self._leader_only(event):
            return
        name = str(event.params["name"])
        added = self.peers.action_catalogs()
        if name not in {catalog.name for catalog in added}:
            event.fail(f"no catalog {name!r} was added by add-catalog; see list-catalogs")
            return
        self.peers.save(catalogs=[catalog for catalog in added if catalog.name != name])
        self._refresh_and_reconcile()
        event.set_results({"removed": name})

    def _on_list_catalogs_action(self, event: ops.ActionEvent) -> None:
        sources, problems = self._catalog_sources()
        listed = sorted(
            (catalog.name, catalog.connector, catalog.source)
            for source in sources
            for catalog in source
        )
        rows = [{"name": n, "connector": c, "source": s} for n, c, s in listed]
        event.set_results({"catalogs": json.dumps(rows), "count": len(rows)})
        for problem in problems:
            event.log(problem)

    def _refresh_and_reconcile(self) -> None:
        """Apply an action's change in the same hook, from a fresh snapshot."""
        self._inputs = None
        self._reconcile()


def _first_of(problems: list[Any]) -> str:
    more = f" (+{len(problems) - 1} more in juju debug-log)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


if __name__ == "__main__":  # pragma: nocover
    ops.main(TrinoK8sCharm)
