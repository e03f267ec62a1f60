"""The snapshot: everything Juju knows that one node depends on, gathered once a hook.

It reads config, secrets, the peer relation, the coordinator's offer and the
other relations, and hands the pure core (`core.plan`) one `NodeInputs`.
Nothing here writes: the charm's reconcile applies what the core decides.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import juju_secrets
from charms.trino_k8s.v0.trino_cluster import ClusterNotReadyError
from core import catalogs, exchange, yamltext
from core.config import CharmConfig, ConfigError, Role
from core.plan import HTTP_PORT, Cluster, NodeInputs, Security, node_environment

if TYPE_CHECKING:
    from charm import TrinoK8sCharm

logger = logging.getLogger(__name__)

Sources = list[list[catalogs.Catalog]]


class Snapshot:
    """The node's inputs, read from Juju on first use and kept for the rest of the hook."""

    def __init__(self, charm: TrinoK8sCharm):
        self._charm = charm
        self._inputs: NodeInputs | ConfigError | None = None

    def inputs(self) -> NodeInputs | ConfigError:
        """The inputs, or the config problems that keep everything as it is."""
        if self._inputs is None:
            try:
                config = self._charm.load_config(CharmConfig)
            except ConfigError as error:
                self._inputs = error
                return error
            inputs = self._worker(config) if config.role is Role.WORKER else self._node(config)
            self._inputs = dataclasses.replace(
                inputs,
                tracing_endpoint=self._charm.tracing.endpoint(),
                # Only read when a catalog or LDAP needs the JVM to trust more CAs.
                system_cas=system_cas() if inputs.jvm_cas else "",
            )
        return self._inputs

    def forget(self) -> None:
        """Read Juju again on next use (an action has just changed something)."""
        self._inputs = None

    def catalog_sources(self) -> tuple[Sources, list[str]]:
        """Catalogs by source, and why `catalog-config` could not be read, if it could not.

        `catalog-config` is read apart from the other options: a bad catalog must
        not stop them from applying, nor they it.
        """
        text = str(self._charm.config.get("catalog-config", ""))
        try:
            document = yamltext.load(text) if text.strip() else None
            from_config = catalogs.from_document(document, catalogs.CONFIG_SOURCE)
            problems = []
        except (yamltext.YAMLError, catalogs.CatalogDocumentError) as error:
            from_config, problems = [], [f"catalog-config: {str(error).splitlines()[0]}"]
        charm = self._charm
        return [
            from_config,
            charm.peers.action_catalogs(),
            charm.relation_catalogs.catalogs(),
        ], problems

    def _node(self, config: CharmConfig) -> NodeInputs:
        """An `all` or `coordinator` unit: its own catalogs; the leader holds the cluster."""
        charm = self._charm
        sources, problems = self.catalog_sources()
        secrets, refused = juju_secrets.for_catalogs(charm.model, [c for s in sources for c in s])
        connectors = charm.workload.connectors() if any(sources) else catalogs.CONNECTORS
        catalog_set = catalogs.catalog_set(sources, secrets, refused, connectors)
        if problems:
            catalog_set = catalogs.CatalogSet({}, problems + catalog_set.problems)
        leader = charm.unit.is_leader()
        shared_secret = charm.coordinator.shared_secret() if leader else None
        cluster = None
        if shared_secret:
            cluster = Cluster(
                environment=node_environment(charm.model.name),
                discovery_uri=config.discovery_uri.strip() or self._own_address(),
                shared_secret=shared_secret,
            )
        return NodeInputs(
            config,
            charm.model.name,
            charm.unit.name,
            catalog_set,
            cluster=cluster,
            leader=leader,
            leader_unit=charm.peers.leader,
            fault_tolerance=exchange.coordinator(
                config.retry, charm.exchange.storage(), charm.app.name
            ),
            **_access(charm.access.coordinator_security()),
        )

    def _worker(self, config: CharmConfig) -> NodeInputs:
        """A worker takes its cluster settings and every catalog from its coordinator."""
        charm = self._charm
        try:
            offer = charm.cluster.offer()
        except ClusterNotReadyError as why:
            return NodeInputs(config, charm.model.name, charm.unit.name, cluster_problem=str(why))
        relation = charm.cluster.relation
        coordinator = relation.app.name if relation and relation.app else "coordinator"
        # Checked again with the coordinator's rules (and this image's connectors): a
        # worker writes only what they allow, and only under its own folders.
        shared = [
            catalogs.from_cluster(
                name, f"from {coordinator}", catalog.properties, catalog.credentials, catalog.files
            )
            for name, catalog in offer.catalogs.items()
        ]
        connectors = charm.workload.connectors() if offer.catalogs else catalogs.CONNECTORS
        catalog_set = catalogs.catalog_set([shared], {}, connectors=connectors)
        cluster = Cluster(offer.environment, offer.discovery_uri, offer.shared_secret)
        return NodeInputs(
            config,
            charm.model.name,
            charm.unit.name,
            catalog_set,
            cluster=cluster,
            fault_tolerance=exchange.worker(offer.retry_policy, offer.exchange, coordinator),
            **_access(charm.access.worker_security(offer, coordinator)),
        )

    def _own_address(self) -> str:
        """The application's Service: the address that stays when leadership moves.

        Workers announce themselves there. The Service reaches the serving
        coordinator only (the leader narrows it to its pod: `TrinoK8sCharm._route_clients`),
        so a new leader takes the workers over without restarting them.
        """
        charm = self._charm
        return f"http://{charm.app.name}.{charm.model.name}.svc.cluster.local:{HTTP_PORT}"


def system_cas() -> str:
    """The system's trusted CAs (PEM), which a JVM truststore of the charm's must keep."""
    import ssl  # noqa: PLC0415

    paths = ssl.get_default_verify_paths()
    for path in (paths.cafile, paths.openssl_cafile):
        try:
            with open(path, encoding="utf-8", errors="replace") as bundle:
                return bundle.read()
        except (OSError, TypeError):  # no such file, or no path at all
            continue
    logger.warning("no system CA bundle: the JVM truststore holds only the catalogs' CAs")
    return ""


def _access(security: Security | list[str]) -> dict[str, Any]:
    """The NodeInputs fields for what Access says: the security, or what is in its way."""
    if isinstance(security, Security):
        return {"security": security}
    return {"access_problems": tuple(security)}
