#!/usr/bin/env python3
"""The trino-k8s charm: wires Juju events to one reconcile and one status."""

from __future__ import annotations

import logging
import os

import ops

from access import Access
from charms.trino_k8s.v0.trino_cluster import (
    ClusterCatalog,
    ClusterOffer,
    TrinoClusterProvider,
    TrinoClusterRequirer,
)
from core import exchange
from core.config import CharmConfig, ConfigError, Role
from core.observability import Topology, rule_files
from core.plan import CHARM_USER, HTTP_PORT, HTTPS_PORT, NodeInputs, plan_node
from core.rolling import termination_grace_seconds
from relation_catalogs import ENDPOINTS as CATALOG_RELATIONS
from relation_catalogs import RelationCatalogs
from relations import grafana_dashboard, loki_push_api, prometheus_scrape
from relations.peers import Peers
from relations.s3 import S3Requirer
from relations.tracing import Tracing
from restarts import RollingRestart
from snapshot import Snapshot
from status import unit_status
from workload import Workload, with_drain_request

logger = logging.getLogger(__name__)


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
        self.exchange = S3Requirer(self.model, exchange.ENDPOINT)
        self.access = Access(self, self.workload)
        self.snapshot = Snapshot(self)
        if os.environ.get("JUJU_ACTION_NAME"):  # Juju runs an action: only then load them
            from actions import Actions  # noqa: PLC0415

            self.actions = Actions(self)
        self.resource_problem: str | None = None
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
            # The check tells at once when Trino becomes ready or stops being ready
            # (core.plan.ready_check_command): the restart lock moves on at that event.
            self.on.trino_pebble_custom_notice,
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
            self.on.oauth_relation_created,
            self.on.oauth_relation_changed,
            self.on.oauth_relation_broken,
            self.on.trino_catalog_relation_changed,
            # Fault-tolerant execution: the exchange bucket.
            self.on.exchange_s3_relation_created,
            self.on.exchange_s3_relation_changed,
            self.on.exchange_s3_relation_broken,
            self.on.ldap_relation_created,
            self.on.ldap_relation_changed,
            self.on.ldap_relation_broken,
        ):
            framework.observe(event, self.reconcile)
        for endpoint in CATALOG_RELATIONS:
            framework.observe(self.on[endpoint].relation_created, self.reconcile)
            framework.observe(self.on[endpoint].relation_changed, self.reconcile)
            framework.observe(self.on[endpoint].relation_broken, self.reconcile)
        framework.observe(self.on.trino_catalog_relation_broken, self._on_client_gone)
        framework.observe(self.on.stop, self._on_stop)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    # Reconcile: make Kubernetes and the container match the snapshot.

    def reconcile(self, event: ops.EventBase | None = None) -> None:
        """Make Kubernetes, the relations and the container match the snapshot."""
        if self.unit.is_leader() and self.peers.relation and self.peers.leader != self.unit.name:
            self.peers.save()
        # Providers answer only once asked: ask before reading what they sent.
        self.relation_catalogs.reconcile()
        self.access.register_oauth_client()
        self.access.ldap.publish()
        self.exchange.request(bucket=f"{self.app.name}-exchange")
        inputs = self.snapshot.inputs()
        if isinstance(inputs, ConfigError):
            self.unit.set_ports(HTTP_PORT)
            logger.warning("not applying the config: %s", inputs)
            return
        if held := _held_because(inputs):
            logger.warning("not applying: %s", held)
            return
        self.unit.set_ports(HTTP_PORT, *([HTTPS_PORT] if inputs.security.keystore else []))
        standby = inputs.config.role is not Role.WORKER and not inputs.leader
        self.access.publish(
            inputs.security, inputs.catalogs, inputs.leader_unit if standby else None
        )
        self.restarts.credentials = self.access.credentials(inputs.security)
        for problem in inputs.catalogs.problems:
            logger.warning("keeping the current catalogs: %s", problem)
        self._reconcile_resources(inputs.config, look=isinstance(event, ops.UpgradeCharmEvent))
        self._publish_observability(inputs)
        if not self.workload.container.can_connect():
            return
        self.workload.forward_logs(loki_push_api.endpoints(self.model), self._topology())
        plan = plan_node(inputs)
        if plan.waiting:
            self._idle(inputs.config, plan.waiting)
            return
        if inputs.config.role is Role.WORKER:
            plan = with_drain_request(plan, CHARM_USER, self.restarts.credentials)
        self.restarts.apply(
            plan,
            drain_first=inputs.config.role is Role.WORKER,
            grace_seconds=inputs.config.grace_seconds,
        )
        if inputs.leader and inputs.config.role is not Role.WORKER and self.restarts.in_effect:
            # Workers follow only once the coordinator serves on the same files: a
            # catalog Trino refuses stops at the coordinator, and the workers keep theirs.
            self._publish(inputs)
            self._route_clients()

    def _idle(self, config: CharmConfig, why: str) -> None:
        """This unit must not run Trino now: stop it (a worker's tasks finish first)."""
        if config.role is Role.WORKER:
            # Its coordinator left (remove-relation, or this unit is being removed).
            self.restarts.drain_for_good(config.grace_seconds)
        elif self.workload.is_running():
            logger.info("stopping Trino: %s", why)
            self.workload.stop()
        self.restarts.idle()

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
                settings=self.access.settings(inputs.security),
                password_db=inputs.security.password_db,
                charm_password=inputs.security.charm_password,
                oauth_client_secret=(
                    inputs.security.oauth.client_secret if inputs.security.oauth else ""
                ),
                retry_policy=inputs.fault_tolerance.policy,
                exchange=inputs.fault_tolerance.exchange,
            )
        )

    def _route_clients(self) -> None:
        """Coordinator leader, serving: the application's Service sends clients here only.

        Juju's Service selects every pod of the application, and a standby's pod is
        Ready (its Pebble has no check that fails), so clients and the workers'
        announcements would reach units that run no Trino. Once its Trino serves, the
        leader narrows the Service to its own pod; Juju's later re-applies merge into
        the selector and keep that. A lone unit needs no narrowing (nor trust) until a
        second unit joins.
        """
        pod = self.unit.name.replace("/", "-")
        narrowed = self.peers.app_data.service_pod
        if narrowed == pod or (not narrowed and self.restarts.alone):
            return
        from k8s_resources import ResourcePatchError, select_pod  # noqa: PLC0415

        try:
            select_pod(self.app.name, self.model.name, pod)
        except ResourcePatchError as error:
            self.resource_problem = str(error)
            return
        self.peers.save(service_pod=pod)

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

    def _reconcile_resources(self, config: CharmConfig, *, look: bool = False) -> None:
        """Patch the pod template's resources and grace, when some are (or were) set.

        Usually the leader alone, against the peer record of what it last patched, so
        an application that never set any never pays for lightkube or the API. Juju
        re-applies its own template (terminationGracePeriodSeconds 30, no resources)
        whenever its provisioning info changes: a refresh, trust, constraints. Every
        pod that template starts runs `upgrade-charm` first (``look``), so there any
        unit compares with the live StatefulSet and patches again before its own
        Trino starts: the pods Kubernetes rolls after that keep their full grace.
        """
        if not (look or self.unit.is_leader()):
            return
        # A worker's pod must live long enough to drain: twice the grace period.
        grace = (
            termination_grace_seconds(config.grace_seconds) if config.role is Role.WORKER else None
        )
        recorded = self.peers.app_data.patched_grace_seconds
        grace_due = grace is not None and (look or grace != recorded)
        if not (config.resources or self.peers.patched_resources or grace_due):
            return
        from k8s_resources import ResourcePatchError, apply_resources  # noqa: PLC0415

        try:
            apply_resources(self.app.name, self.model.name, config.resources, grace)
        except ResourcePatchError as error:
            self.resource_problem = str(error)
            return
        if self.unit.is_leader() and self.peers.relation:
            self.peers.save(
                patched_resources=bool(config.resources), patched_grace_seconds=grace or recorded
            )

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(unit_status(self))  # the one place statuses are decided: status.py

    # Scale-down and pod deletion.

    def _on_stop(self, _: ops.StopEvent) -> None:
        """A worker whose pod goes away drains first: its running tasks finish."""
        inputs = self.snapshot.inputs()
        if isinstance(inputs, ConfigError) or inputs.config.role is not Role.WORKER:
            return
        if self.workload.container.can_connect():
            self.restarts.drain_for_good(inputs.config.grace_seconds)

    def _on_client_gone(self, event: ops.RelationBrokenEvent) -> None:
        """A trino-catalog client left: its user and its secret go with it."""
        self.access.clients.forget(event.relation)
        self.reconcile()


def _held_because(inputs: NodeInputs) -> str:
    """Why Trino keeps its files as they are (empty: apply the snapshot).

    Never a weaker setup than the one running (access), never a retry policy
    without the exchange it needs.
    """
    fault_tolerance = inputs.fault_tolerance
    reasons = [*inputs.access_problems, fault_tolerance.problem, fault_tolerance.waiting]
    return "; ".join(reason for reason in reasons if reason)


if __name__ == "__main__":  # pragma: nocover
    ops.main(TrinoK8sCharm)
