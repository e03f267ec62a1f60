"""The pure COS model: scrape jobs, rule selection, log targets, tracing settings."""

from __future__ import annotations

from core import observability
from core.observability import Topology

TOPOLOGY = Topology(
    "lake", "7b2c4b3e-1a5d-4c1e-9f0a-0123456789ab", "trino", "trino/1", "trino-k8s"
)


def test_unit_address_is_the_pod_dns_name_of_the_headless_service():
    assert observability.unit_address("trino-worker/12", "trino-worker", "lake") == (
        "trino-worker-12.trino-worker-endpoints.lake.svc.cluster.local"
    )


def test_rule_files_follow_the_role():
    assert observability.rule_files(coordinator=False, include_coordinator=False) == [
        "trino_nodes.rules"
    ]
    assert observability.rule_files(coordinator=True, include_coordinator=True) == [
        "trino_nodes.rules",
        "trino_coordinator.rules",
    ]
    assert "trino_workers.rules" in observability.rule_files(
        coordinator=True, include_coordinator=False
    )


def test_scope_expression_fills_every_placeholder_with_the_application_matchers():
    scoped = observability.scope_expression(
        "a{%%juju_topology%%} / b{%%juju_topology%%}", TOPOLOGY
    )
    matchers = (
        'juju_model="lake",juju_model_uuid="7b2c4b3e-1a5d-4c1e-9f0a-0123456789ab",'
        'juju_application="trino"'
    )
    assert scoped == f"a{{{matchers}}} / b{{{matchers}}}"


def test_tracing_properties_need_an_endpoint_and_add_a_scheme_to_grpc_addresses():
    assert observability.tracing_properties("") == {}
    assert observability.tracing_properties("tempo:4317") == {
        "tracing.enabled": "true",
        "otel.exporter.endpoint": "http://tempo:4317",
        "otel.exporter.protocol": "grpc",
    }
    assert (
        observability.tracing_properties("https://tempo:4317")["otel.exporter.endpoint"]
        == "https://tempo:4317"
    )


def test_no_loki_and_no_previous_target_means_no_layer():
    assert observability.logging_layer({}, {}, TOPOLOGY) == {}


def test_a_target_left_from_a_gone_loki_unit_is_switched_off_not_dropped():
    layer = observability.logging_layer(
        {"loki/1": "http://loki-1:3100/loki/api/v1/push"},
        {"loki-0": {"type": "loki", "location": "http://loki-0:3100/loki/api/v1/push"}},
        TOPOLOGY,
    )

    targets = layer["log-targets"]
    assert targets["loki-1"]["services"] == ["all"]
    assert targets["loki-1"]["labels"]["juju_unit"] == "trino/1"
    assert targets["loki-0"] == {
        "override": "replace",
        "type": "loki",
        "location": "http://loki-0:3100/loki/api/v1/push",
        "services": ["-all"],
    }
