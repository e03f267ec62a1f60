#!/usr/bin/env python3
"""The trino-k8s charm: wires Juju events to one reconcile and one status."""

from __future__ import annotations

import functools
import logging

import ops

from core.config import CharmConfig, ConfigError
from core.plan import HTTP_PORT, SERVICE, NodeInputs, Plan, plan_node
from workload import Workload, probe

logger = logging.getLogger(__name__)


class TrinoK8sCharm(ops.CharmBase):
    """Trino on Kubernetes."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.workload = Workload(self.unit.get_container("trino"))
        self._resource_problem: str | None = None
        for event in (
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.start,
            self.on.leader_elected,
            self.on.update_status,
            self.on.trino_pebble_ready,
            self.on.trino_pebble_check_failed,
            self.on.trino_pebble_check_recovered,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(self.on.restart_action, self._on_restart_action)

    @functools.cached_property
    def _config(self) -> CharmConfig | ConfigError:
        try:
            return self.load_config(CharmConfig)
        except ConfigError as error:
            return error

    @functools.cached_property
    def _plan(self) -> Plan | None:
        """The desired node, or None while the config is invalid."""
        if isinstance(self._config, ConfigError):
            return None
        return plan_node(NodeInputs(self._config, self.model.name, self.unit.name))

    def _reconcile(self, event: ops.EventBase) -> None:
        """Bring Kubernetes and the container in line with the config; report nothing."""
        self.unit.set_ports(HTTP_PORT)
        if isinstance(self._config, ConfigError):
            logger.warning("not applying the config: %s", self._config)
            return
        self._reconcile_resources(self._config, event)
        plan = self._plan
        if plan is None or not self.workload.container.can_connect():
            return
        if plan.waiting:
            if self.workload.is_running():
                logger.info("stopping Trino: %s", plan.waiting)
                self.workload.container.stop(SERVICE)
            return
        self.workload.apply(plan)

    def _reconcile_resources(self, config: CharmConfig, event: ops.EventBase) -> None:
        """Patch the pod resources (leader only, and only when there is something to do)."""
        changed = isinstance(event, ops.ConfigChangedEvent | ops.UpgradeCharmEvent)
        if not self.unit.is_leader() or not (config.resources or changed):
            return
        from k8s_resources import ResourcePatchError, apply_resources  # noqa: PLC0415

        try:
            apply_resources(self.app.name, self.model.name, config.resources)
        except ResourcePatchError as error:
            if config.resources:
                self._resource_problem = str(error)
            else:  # nothing asked for: without access we can never have patched anything
                logger.debug("no resources to clear: %s", error)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(self._status())

    def _status(self) -> ops.StatusBase:  # noqa: PLR0911  (one exit per situation, in order)
        if isinstance(self._config, ConfigError):
            problems = self._config.problems
            more = f" (+{len(problems) - 1} more in juju debug-log)" if len(problems) > 1 else ""
            return ops.BlockedStatus(f"{problems[0]}{more}")
        if self._resource_problem:
            return ops.BlockedStatus(f"workload resources: {self._resource_problem}")
        if not self.workload.container.can_connect():
            return ops.WaitingStatus("waiting for the trino container to start")
        assert self._plan is not None  # noqa: S101  (the config is valid here)
        if self._plan.waiting:
            return ops.WaitingStatus(self._plan.waiting)
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
        if self._config.role.value == "coordinator":
            return ops.ActiveStatus("coordinator: queries run once workers join")
        return ops.ActiveStatus()

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


if __name__ == "__main__":  # pragma: nocover
    ops.main(TrinoK8sCharm)
