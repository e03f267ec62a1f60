"""What the charm tells COS (Prometheus, Grafana, Loki, Tempo), as plain values.

No `ops` and no `cosl` here: the relation modules turn these values into
databags, and the Pebble shell applies the log-forwarding layer.

How Prometheus gets an identity for ``/metrics`` (checked in the Trino and
airlift sources, see the report of issue 7):

- ``/metrics`` is a MANAGEMENT_READ resource
  (``io.trino.server.security.ResourceSecurityDynamicFeature``): the caller must
  be authenticated and file access control must allow it ``system_information``
  read. Without an authenticator Trino runs the InsecureAuthenticator, which
  takes the user from a basic-auth header *without a password* (a password is
  refused) or from ``X-Trino-User``. So the scrape job sends basic auth with the
  user :data:`METRICS_USER` and no password, and ``rules.json`` allows that user
  ``read`` only. ``system_information`` read opens exactly the MANAGEMENT_READ
  resources (``ServerSecurityModule``: ``/metrics``, ``/v1/jmx/mbean``,
  ``/v1/service``), never a write such as draining a worker, and nothing that
  any anonymous client cannot already reach in insecure mode.
- Without authentication, ``management.user`` is deliberately NOT set. On plain
  HTTP it replaces the authenticated identity of *every* management request
  (read and write) with the fixed user; a header ``X-Trino-User:
  trino-k8s-charm`` then becomes an impersonation request
  (``checkCanImpersonateUser``), which file access control denies without
  impersonation rules, so the charm's drain (``PUT /v1/info/state``) would get
  403; granting the fixed user write instead would let any client on port 8080
  drain workers.
- With password authentication (``user-secret-id``) plain-HTTP requests carry
  no usable identity (Trino answers 403), and Prometheus can only read plain
  relation data, so it cannot be handed a password. Then
  ``management.user=trino-metrics`` is set: plain-HTTP requests to management
  endpoints run as that read-only user, and nothing else is opened. The
  charm's drains are unaffected: they then go over HTTPS (or as forwarded
  HTTPS), with the charm user's password, where ``management.user`` does not
  apply (``management.user.https-enabled`` stays false).

Metric names: Trino's OpenMetrics endpoint (airlift ``openmetrics``,
``OpenMetricsCollector``) names each managed MBean attribute
``sanitize(<ObjectName>_<attribute>)``: ``trino.execution:name=QueryManager``
``RunningQueries`` gives ``trino_execution_name_QueryManager_RunningQueries``
(the name the Trino docs, admin/openmetrics.md, query). ``CounterStat``
attributes are OpenMetrics counters with the same naming. JVM MBeans are only
exported when listed in ``metrics.jmx-object-names`` (``|``-separated; airlift
439, Trino 483's, still reads the legacy ``openmetrics.`` name) and then follow
``JMX_<domain>_TYPE_<type>_ATTRIBUTE_<attribute>[_<item>]``, e.g.
``JMX_java_lang_TYPE_Memory_ATTRIBUTE_HeapMemoryUsage_used`` (composite items
are exported since airlift 343).

Checked in Trino 483's classes and, for the names 476 shares, in a real scrape
(tests/live/test_observability.py): the query states come from
``DispatchManager`` (``RunningQueries``, ``QueuedQueries``,
``FullyBlockedQueries``: there is no ``BlockedQueries``), the counters from
``QueryManagerStats``, both under ``trino.execution:name=QueryManager``; the
node counts from ``io.trino.node.CoordinatorNodeManager`` (Trino 476 still
had ``trino.metadata:name=DiscoveryNodeManager``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

METRICS_USER = "trino-metrics"
METRICS_PATH = "/metrics"
# JVM MBeans the dashboard and alerts need (heap, process CPU), added to /metrics.
JMX_OBJECT_NAMES = ("java.lang:type=Memory", "java.lang:type=OperatingSystem")

LOGGING_LAYER = "trino-logging"
TOPOLOGY_PLACEHOLDER = "%%juju_topology%%"

# Metric names the dashboard and the alert rules may use: every one is exported
# by Trino 483 at /metrics (sources in the module docstring) with the
# jmx-object-names above, or is Prometheus's own `up`.
QUERY_MANAGER = "trino_execution_name_QueryManager"
NODE_MANAGER = "trino_node_name_CoordinatorNodeManager"
HEAP = "JMX_java_lang_TYPE_Memory_ATTRIBUTE_HeapMemoryUsage"
CPU = "JMX_java_lang_TYPE_OperatingSystem_ATTRIBUTE"
TRINO_METRICS = frozenset(
    {
        "up",
        f"{QUERY_MANAGER}_RunningQueries",
        f"{QUERY_MANAGER}_QueuedQueries",
        f"{QUERY_MANAGER}_FullyBlockedQueries",
        f"{QUERY_MANAGER}_StartedQueries",
        f"{QUERY_MANAGER}_CompletedQueries",
        f"{QUERY_MANAGER}_FailedQueries",
        f"{QUERY_MANAGER}_UserErrorFailures",
        f"{QUERY_MANAGER}_InternalFailures",
        f"{QUERY_MANAGER}_ExternalFailures",
        f"{QUERY_MANAGER}_InsufficientResourcesFailures",
        f"{QUERY_MANAGER}_ConsumedInputBytes",
        f"{QUERY_MANAGER}_ConsumedInputRows",
        f"{QUERY_MANAGER}_ConsumedCpuTimeSecs",
        f"{NODE_MANAGER}_ActiveNodeCount",
        f"{NODE_MANAGER}_InactiveNodeCount",
        f"{NODE_MANAGER}_ShuttingDownNodeCount",
        f"{HEAP}_used",
        f"{HEAP}_committed",
        f"{HEAP}_max",
        f"{CPU}_ProcessCpuLoad",
        f"{CPU}_AvailableProcessors",
    }
)


class Topology(NamedTuple):
    """Where a unit lives in Juju: the labels COS puts on everything it collects."""

    model: str
    model_uuid: str
    application: str
    unit: str
    charm_name: str

    def labels(self) -> dict[str, str]:
        """The juju_* labels Loki and Prometheus use (with `charm` as COS spells it)."""
        return {
            "juju_model": self.model,
            "juju_model_uuid": self.model_uuid,
            "juju_application": self.application,
            "juju_unit": self.unit,
            "charm": self.charm_name,
        }

    def matchers(self) -> str:
        """PromQL label matchers that scope an expression to this application."""
        return (
            f'juju_model="{self.model}",juju_model_uuid="{self.model_uuid}",'
            f'juju_application="{self.application}"'
        )


def unit_address(unit: str, app: str, model: str) -> str:
    """The unit's stable DNS name: Juju's headless `<app>-endpoints` service."""
    return f"{unit.replace('/', '-')}.{app}-endpoints.{model}.svc.cluster.local"


def scrape_jobs(port: int) -> list[dict[str, Any]]:
    """One job whose `*` target Prometheus expands to every unit's address.

    Basic auth with a user and no password is how Trino's insecure mode takes a
    user (see the module docstring); that user may read system information only.
    """
    return [
        {
            "job_name": "trino",
            "metrics_path": METRICS_PATH,
            "static_configs": [{"targets": [f"*:{port}"]}],
            "basic_auth": {"username": METRICS_USER},
        }
    ]


def scrape_metadata(topology: Topology) -> dict[str, str]:
    """The `scrape_metadata` Prometheus uses to label the scraped series."""
    return {
        "model": topology.model,
        "model_uuid": topology.model_uuid,
        "application": topology.application,
        "unit": topology.unit,
        "charm_name": topology.charm_name,
    }


def rule_files(coordinator: bool, include_coordinator: bool) -> list[str]:
    """Which alert rule files apply to this application's role.

    Every node can go down or run out of heap; only coordinators see queries
    and the cluster's nodes; only a dedicated coordinator needs workers.
    """
    files = ["trino_nodes.rules"]
    if coordinator:
        files.append("trino_coordinator.rules")
        if not include_coordinator:
            files.append("trino_workers.rules")
    return files


def scope_expression(expression: str, topology: Topology) -> str:
    """Put this application's topology matchers where the rule says `%%juju_topology%%`.

    Done here rather than left to a ``cos-tool`` binary, which the charm does not
    ship: without it cosl would drop the placeholder and the rule would match
    every Trino in Prometheus.
    """
    return expression.replace(TOPOLOGY_PLACEHOLDER, topology.matchers())


def tracing_properties(endpoint: str) -> dict[str, str]:
    """Trino's OpenTelemetry settings for an OTLP gRPC receiver, or none.

    The tracing library gives gRPC receivers as ``host:port`` without a scheme;
    Trino's exporter wants a URL (docs: admin/opentelemetry.md).
    """
    if not endpoint:
        return {}
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    return {
        "tracing.enabled": "true",
        "otel.exporter.endpoint": url,
        "otel.exporter.protocol": "grpc",
    }


def log_target_name(unit: str) -> str:
    """A Pebble log-target name for a Loki unit (`loki/0` -> `loki-0`)."""
    return unit.replace("/", "-")


def logging_layer(
    endpoints: Mapping[str, str],
    current_targets: Mapping[str, Mapping[str, Any]],
    topology: Topology,
) -> dict[str, Any]:
    """The Pebble layer forwarding Trino's logs to every Loki unit.

    ``endpoints`` maps Loki unit names to push URLs. A target already in the
    plan whose Loki unit is gone is kept with ``services: [-all]``: Pebble
    cannot remove a target through a layer, only stop feeding it.
    """
    targets: dict[str, Any] = {}
    for unit, url in sorted(endpoints.items()):
        targets[log_target_name(unit)] = {
            "override": "replace",
            "type": "loki",
            "location": url,
            "services": ["all"],
            "labels": topology.labels(),
        }
    for name, target in sorted(current_targets.items()):
        if name in targets:
            continue
        targets[name] = {
            "override": "replace",
            "type": "loki",
            "location": str(target.get("location", "")),
            "services": ["-all"],
        }
    if not targets:
        return {}
    return {"summary": "Trino log forwarding to Loki", "log-targets": targets}
