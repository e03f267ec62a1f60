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
from access import WAITING_FOR_CERTIFICATE, Access
from charms.trino_k8s.v0.trino_cluster import (
    ClusterCatalog,
    ClusterNotReadyError,
    ClusterOffer,
    TrinoClusterProvider,
    TrinoClusterRequirer,
)
from core import catalogs
from core.config import CharmConfig, ConfigError, Role
from core.observability import Topology, rule_files
from core.plan import (
    HTTP_PORT,
    HTTPS_PORT,
    SERVICE,
    Cluster,
    NodeInputs,
    Security,
    idle_reason,
    node_environment,
    plan_node,
)
from core.rolling import termination_grace_seconds
from relation_catalogs import ENDPOINTS as CATALOG_RELATIONS
from relation_catalogs import RelationCatalogs
from relations import grafana_dashboard, loki_push_api, prometheus_scrape
from relations.peers import ACTION_SOURCE, Peers
from relations.tracing import Tracing
from restarts import RollingRestart
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
        self.restarts = RollingRestart(self.unit, self.peers, self.workload)
        self.coordinator = TrinoClusterProvider(self.model)
        self.cluster = TrinoClusterRequirer(self.model)
        self.tracing = Tracing(self)
        self.relation_catalogs = RelationCatalogs(self.model, self.peers)
        self.access = Access(self, self.workload)
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
            self.on.trino_peers_relation_departed,
            self.on.trino_coordinator_relation_joined,
            self.on.trino_worker_relation_changed,
            self.on.trino_worker_relation_broken,
            self.on.trino_pebble_ready,
            self.on.trino_pebble_check_failed,
            self.on.trino_pebble_check_recovered,
            # Observability (COS): what we publish, where logs and traces go.
            self.on.metrics_endpoint_relation_joined,
            self.on.metrics_endpoint_relation_changed,
            self.on.grafana_dashboard_relation_joined,
            self.on.logging_relation_changed,
            self.on.logging_relation_departed,
            self.on.logging_relation_broken,
            self.on.tracing_relation_changed,
            self.on.tracing_relation_broken,
            self.on.ingress_relation_changed,
            self.on.ingress_relation_broken,
            self.on.certificates_relation_changed,
            self.on.certificates_relation_broken,
            self.on.trino_catalog_relation_changed,
        ):
            framework.observe(event, self._reconcile)
        for endpoint in CATALOG_RELATIONS:
            framework.observe(self.on[endpoint].relation_created, self._reconcile)
            framework.observe(self.on[endpoint].relation_changed, self._reconcile)
            framework.observe(self.on[endpoint].relation_broken, self._reconcile)
        framework.observe(self.on.trino_catalog_relation_broken, self._on_client_gone)
        framework.observe(self.on.stop, self._on_stop)
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
            if config.role is Role.WORKER:
                self._inputs = self._worker_inputs(config)
            else:
                self._inputs = self._coordinator_inputs(config)
            self._inputs = dataclasses.replace(
                self._inputs, tracing_endpoint=self.tracing.endpoint()
            )
        return self._inputs

    def _coordinator_inputs(self, config: CharmConfig) -> NodeInputs:
        sources, problems = self._catalog_sources()
        secret_ids = {catalog.secret for source in sources for catalog in source if catalog.secret}
        catalog_set = catalogs.catalog_set(sources, juju_secrets.fetch(self.model, secret_ids))
        if problems:
            catalog_set = catalogs.CatalogSet({}, problems + catalog_set.problems)
        leader = self.unit.is_leader()
        shared_secret = self.coordinator.shared_secret() if leader else None
        cluster = None
        if shared_secret:
            cluster = Cluster(
                environment=node_environment(self.model.name),
                discovery_uri=config.discovery_uri.strip() or self._own_address(),
                shared_secret=shared_secret,
            )
        security = self.access.coordinator_security()
        return NodeInputs(
            config,
            self.model.name,
            self.unit.name,
            catalog_set,
            cluster=cluster,
            leader=leader,
            leader_unit=self.peers.leader,
            security=security if isinstance(security, Security) else Security(),
            access_problems=() if isinstance(security, Security) else tuple(security),
        )

    def _worker_inputs(self, config: CharmConfig) -> NodeInputs:
        """A worker takes its cluster settings and every catalog from its coordinator."""
        try:
            offer = self.cluster.offer()
        except ClusterNotReadyError as why:
            return NodeInputs(config, self.model.name, self.unit.name, cluster_problem=str(why))
        coordinator = self.cluster.relation.app.name if self.cluster.relation else "coordinator"
        catalog_set = catalogs.CatalogSet(
            {
                name: catalogs.Resolved(
                    f"from {coordinator}",
                    catalogs.ordered(dict(catalog.properties)),
                    catalog.credentials,
                    dict(catalog.files),
                )
                for name, catalog in sorted(offer.catalogs.items())
            },
            [],
        )
        cluster = Cluster(offer.environment, offer.discovery_uri, offer.shared_secret)
        security = self.access.worker_security(offer)
        return NodeInputs(
            config,
            self.model.name,
            self.unit.name,
            catalog_set,
            cluster=cluster,
            security=security if isinstance(security, Security) else Security(),
            access_problems=() if isinstance(security, Security) else tuple(security),
        )

    def _own_address(self) -> str:
        """This unit's stable pod address: the headless service Juju makes for the app."""
        pod = self.unit.name.replace("/", "-")
        return f"http://{pod}.{self.app.name}-endpoints.{self.model.name}.svc.cluster.local:{HTTP_PORT}"

    # Reconcile: make Kubernetes and the container match the snapshot.

    def _reconcile(self, _: ops.EventBase | None = None) -> None:
        if self.unit.is_leader() and self.peers.relation and self.peers.leader != self.unit.name:
            self.peers.save()
        self.relation_catalogs.reconcile()
        inputs = self._snapshot()
        if isinstance(inputs, ConfigError):
            self.unit.set_ports(HTTP_PORT)
            logger.warning("not applying the config: %s", inputs)
            return
        if inputs.access_problems:
            # Trino keeps its files: never fall back to a weaker setup.
            logger.warning("not applying: %s", "; ".join(inputs.access_problems))
            return
        self.unit.set_ports(HTTP_PORT, *([HTTPS_PORT] if inputs.security.keystore else []))
        self.access.publish(inputs.security, inputs.catalogs)
        self.restarts.credentials = self.access.credentials(inputs.security)
        for problem in inputs.catalogs.problems:
            logger.warning("keeping the current catalogs: %s", problem)
        self._reconcile_resources(inputs.config)
        if inputs.leader and inputs.config.role is not Role.WORKER:
            self._publish(inputs)
        self._publish_observability(inputs)
        if not self.workload.container.can_connect():
            return
        self.workload.forward_logs(loki_push_api.endpoints(self.model), self._topology())
        plan = plan_node(inputs)
        if plan.waiting:
            if self.workload.is_running():
                logger.info("stopping Trino: %s", plan.waiting)
                self.workload.container.stop(SERVICE)
            self.restarts.idle()
            return
        self.restarts.apply(
            plan,
            drain_first=inputs.config.role is Role.WORKER,
            grace_seconds=inputs.config.grace_seconds,
        )

    def _publish(self, inputs: NodeInputs) -> None:
        """Coordinator leader: hand workers the cluster settings and the last good catalogs."""
        if inputs.cluster is None or inputs.catalogs.problems or not self.coordinator.relations:
            return
        self.coordinator.publish(
            ClusterOffer(
                discovery_uri=inputs.cluster.discovery_uri,
                environment=inputs.cluster.environment,
                shared_secret=inputs.cluster.shared_secret,
                catalogs={
                    name: ClusterCatalog(catalog.properties, catalog.credentials, catalog.files)
                    for name, catalog in inputs.catalogs.catalogs.items()
                },
                settings=self.access.settings(),
                password_db=inputs.security.password_db,
                charm_password=inputs.security.charm_password,
            )
        )

    def _topology(self) -> Topology:
        return Topology(
            self.model.name, self.model.uuid, self.app.name, self.unit.name, self.meta.name
        )

    def _publish_observability(self, inputs: NodeInputs) -> None:
        """Scrape jobs, alert rules and dashboard for this role (each only if related)."""
        config = inputs.config
        coordinator = config.role in (Role.ALL, Role.COORDINATOR)
        rules = rule_files(coordinator, include_coordinator=config.role is Role.ALL)
        standby = coordinator and not inputs.leader
        topology = self._topology()
        prometheus_scrape.publish(self.model, topology, rules, HTTP_PORT, scraped=not standby)
        grafana_dashboard.publish(self.model, topology)

    def _reconcile_resources(self, config: CharmConfig) -> None:
        """Patch the pod resources: leader only, and only when some are (or were) set.

        The peer flag records that the charm patched the StatefulSet, so clearing
        the options removes the resources again, while an application that never
        set them never pays for lightkube or the API.
        """
        if not self.unit.is_leader():
            return
        # A worker's pod must live long enough to drain: twice the grace period.
        grace = (
            termination_grace_seconds(config.grace_seconds) if config.role is Role.WORKER else None
        )
        grace_due = grace is not None and grace != self.peers.app_data.patched_grace_seconds
        if not (config.resources or self.peers.patched_resources or grace_due):
            return
        from k8s_resources import ResourcePatchError, apply_resources  # noqa: PLC0415

        try:
            apply_resources(self.app.name, self.model.name, config.resources, grace)
        except ResourcePatchError as error:
            self._resource_problem = str(error)
            return
        if self.peers.relation:
            self.peers.save(
                patched_resources=bool(config.resources),
                patched_grace_seconds=grace or self.peers.app_data.patched_grace_seconds,
            )

    # Status: one place decides what the operator reads.

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(self._status())

    def _status(self) -> ops.StatusBase:
        """Operator input problems first (they need action), then the workload's state."""
        inputs = self._snapshot()
        if isinstance(inputs, ConfigError):
            return ops.BlockedStatus(_first_of(inputs.problems))
        blocked, waiting = self._input_problems(inputs)
        if blocked:
            return ops.BlockedStatus(_first_of(blocked))
        if inputs.access_problems == (WAITING_FOR_CERTIFICATE,):
            return ops.WaitingStatus(WAITING_FOR_CERTIFICATE)  # nothing applied until it comes
        status = self._workload_status(inputs)
        if waiting and isinstance(status, ops.ActiveStatus):
            return ops.WaitingStatus(_first_of(waiting))
        return status

    def _input_problems(self, inputs: NodeInputs) -> tuple[list[str], list[str]]:
        """What the operator must fix, and what related applications have not sent yet."""
        blocked = []
        if self._resource_problem:
            blocked.append(f"workload resources: {self._resource_problem}")
        blocked += inputs.catalogs.problems
        if inputs.access_problems != (WAITING_FOR_CERTIFICATE,):
            blocked += inputs.access_problems
        if inputs.config.role is Role.WORKER:
            blocked += self._unused_on_worker()
        relation_blocked, waiting = self.relation_catalogs.problems()
        return blocked + relation_blocked, waiting

    def _unused_on_worker(self) -> list[str]:
        """Coordinator-only options set on a worker: what to reset."""
        reset = f"`juju config {self.app.name} --reset"
        return [
            f"{option} is unused on a worker ({what} come from the coordinator): {reset} {option}`"
            for option, what in (
                ("catalog-config", "catalogs"),
                ("user-secret-id", "users"),
                ("access-control-rules", "rules"),
            )
            if str(self.config.get(option, "")).strip()
        ]

    def _workload_status(self, inputs: NodeInputs) -> ops.StatusBase:
        if not self.workload.container.can_connect():
            return ops.WaitingStatus("waiting for the trino container to start")
        waiting = idle_reason(inputs)
        if waiting:
            return ops.WaitingStatus(waiting)
        config = inputs.config
        restarting = self._restart_status(config)
        if restarting:
            return restarting
        if not self.workload.is_running():
            return ops.BlockedStatus(
                f"Trino is {self.workload.service_status() or 'not set up'}; see "
                f"`juju ssh --container trino {self.unit.name} pebble logs trino`"
            )
        return self._serving_status(config)

    def _serving_status(self, config: CharmConfig) -> ops.StatusBase:
        """What Trino itself says: starting, draining, or serving its role."""
        info = probe()
        if info is None:
            return ops.WaitingStatus("Trino is starting (not answering on port 8080 yet)")
        if info.version:
            self.unit.set_workload_version(info.version)
        if info.starting:
            return ops.WaitingStatus("Trino is starting")
        if info.state == "SHUTTING_DOWN":
            return ops.MaintenanceStatus(_draining(config))
        if self.restarts.queued:
            return ops.ActiveStatus(self.restarts.queued)
        if config.role is Role.COORDINATOR:
            return ops.ActiveStatus("coordinator: queries run once workers join")
        return ops.ActiveStatus()

    def _restart_status(self, config: CharmConfig) -> ops.StatusBase | None:
        """A drain in progress, or a restart that failed and holds up the roll."""
        if self.restarts.draining:
            return ops.MaintenanceStatus(_draining(config))
        failure = self.restarts.failure(config.role is Role.WORKER, config.grace_seconds)
        if not failure:
            return None
        line = self.workload.last_error()
        return ops.BlockedStatus(
            f"restart failed: {failure}{f'; Trino says: {line}' if line else ''}. The roll "
            f"is paused here: fix the cause, then `juju run {self.app.name}/leader restart`"
        )

    # Scale-down and pod deletion.

    def _on_stop(self, _: ops.StopEvent) -> None:
        """A worker whose pod goes away drains first: its running tasks finish."""
        inputs = self._snapshot()
        if isinstance(inputs, ConfigError) or inputs.config.role is not Role.WORKER:
            return
        if self.workload.container.can_connect():
            self.restarts.credentials = self.access.credentials(inputs.security)
            self.restarts.drain_for_good(inputs.config.grace_seconds)

    def _on_client_gone(self, event: ops.RelationBrokenEvent) -> None:
        """A trino-catalog client left: its user and its secret go with it."""
        self.access.clients.forget(event.relation)
        self._reconcile()

    # Actions.

    def _on_restart_action(self, event: ops.ActionEvent) -> None:
        """Restart every unit of the application, one at a time, draining workers first."""
        if not self._leader_only(event):
            return
        epoch = self.peers.app_data.restart_epoch + 1
        self.peers.save(restart_epoch=epoch)
        self._refresh_and_reconcile()
        holder = self.peers.app_data.restart_granted
        outcome = {}
        for unit in sorted(self.peers.units, key=lambda unit: unit.name):
            done = self.peers.unit_data(unit).restart_epoch >= epoch
            outcome[unit.name] = (
                "restarting now" if unit.name == holder else "restarted" if done else "queued"
            )
        event.log("units restart one at a time; `juju status` follows the roll")
        event.set_results({"units": json.dumps(outcome, sort_keys=True)})

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

    def _not_worker(self, event: ops.ActionEvent) -> bool:
        if self.config.get("charm-function") != Role.WORKER.value:
            return True
        coordinator = self.cluster.relation.app.name if self.cluster.relation else None
        event.fail(
            "a worker takes its catalogs from its coordinator: run this on "
            f"{f'{coordinator}/leader' if coordinator else 'the coordinator application'}"
        )
        return False

    def _on_add_catalog_action(self, event: ops.ActionEvent) -> None:
        if not self._leader_only(event) or not self._not_worker(event):
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
        if not self._leader_only(event) or not self._not_worker(event):
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


def _draining(config: CharmConfig) -> str:
    period = config.graceful_shutdown_period.strip()
    return f"draining: running tasks finish (up to 2 x {period}), then Trino restarts"


def _first_of(problems: list[Any]) -> str:
    more = f" (+{len(problems) - 1} more in juju debug-log)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


if __name__ == "__main__":  # pragma: nocover
    ops.main(TrinoK8sCharm)
