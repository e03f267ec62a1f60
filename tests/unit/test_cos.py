"""COS integration as Juju drives it: databags, log forwarding, tracing, dashboard."""

from __future__ import annotations

import json
import pathlib

import ops
import promql_parser
import pytest
import yaml
from conftest import properties, read_files
from cosl import LZMABase64
from ops import testing

from charm import TrinoK8sCharm
from core.observability import TRINO_METRICS

ROOT = pathlib.Path(__file__).resolve().parents[2]

MODEL = testing.Model(name="lake", uuid="7b2c4b3e-1a5d-4c1e-9f0a-0123456789ab")
TOPOLOGY = {
    "juju_model": "lake",
    "juju_model_uuid": "7b2c4b3e-1a5d-4c1e-9f0a-0123456789ab",
    "juju_application": "trino-k8s",
}
LOKI_URL = "http://loki-{}.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
TEMPO_GRPC = "tempo-0.tempo-endpoints.cos.svc.cluster.local:4317"


def state(
    container: testing.Container, *relations: testing.RelationBase, **kwargs
) -> testing.State:
    peers = testing.PeerRelation("trino-peers")
    return testing.State(
        model=MODEL, containers={container}, relations={peers, *relations}, **kwargs
    )


def selectors(expression: str) -> list[promql_parser.VectorSelector]:
    """Every series selector of a PromQL expression (parsing fails on bad PromQL)."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expression), visit)
    return found


def matchers(selector: promql_parser.VectorSelector) -> dict[str, str]:
    return {matcher.name: matcher.value for matcher in selector.matchers.matchers}


@pytest.fixture
def relation_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every relation-set the charm makes (what ops commits to Juju)."""
    writes: list[tuple[str, str]] = []
    original = ops.model.RelationDataContent._commit

    def spy(self: ops.model.RelationDataContent, data: dict[str, str]) -> None:
        writes.extend(data.items())
        original(self, data)

    monkeypatch.setattr(ops.model.RelationDataContent, "_commit", spy)
    return writes


@pytest.fixture
def running(ctx, container, trino, pebble_calls) -> testing.State:
    """A unit after pebble-ready: files written, Trino started and serving."""
    out = ctx.run(
        ctx.on.pebble_ready(container),
        testing.State(model=MODEL, leader=True, containers={container}),
    )
    pebble_calls.replans = 0
    return out


# metrics-endpoint


def alert_rules(relation: testing.Relation) -> list[dict]:
    groups = json.loads(relation.local_app_data["alert_rules"])["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_leader_publishes_a_scrape_job_for_every_unit_with_the_metrics_user(ctx, container, trino):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0), state(container, relation, leader=True)
    )

    published = out.get_relation(relation.id)
    assert json.loads(published.local_app_data["scrape_jobs"]) == [
        {
            "job_name": "trino",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["*:8080"]}],  # `*`: every unit of the app
            "basic_auth": {"username": "trino-metrics"},  # no password: Trino refuses one
        }
    ]
    assert json.loads(published.local_app_data["scrape_metadata"]) == {
        "model": "lake",
        "model_uuid": TOPOLOGY["juju_model_uuid"],
        "application": "trino-k8s",
        "unit": "trino-k8s/0",
        "charm_name": "trino-k8s",
    }
    assert published.local_unit_data["prometheus_scrape_unit_address"] == (
        "trino-k8s-0.trino-k8s-endpoints.lake.svc.cluster.local"
    )
    assert published.local_unit_data["prometheus_scrape_unit_name"] == "trino-k8s/0"
    # The scraper's identity may read system information, and nothing more.
    rules = json.loads(read_files_of(out, container)["rules.json"])
    assert {"user": "trino-metrics", "allow": ["read"]} in rules["system_information"]


def read_files_of(out: testing.State, container: testing.Container) -> dict[str, str]:
    return read_files(container.mounts["etc"].source)  # type: ignore[arg-type]


def test_every_unit_writes_its_own_address_so_prometheus_scrapes_them_all(container, trino):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    unit_data = {}
    worker = {"charm-function": "worker"}  # every unit of a worker application runs Trino
    for unit_id in range(3):
        ctx = testing.Context(TrinoK8sCharm, unit_id=unit_id)
        out = ctx.run(
            ctx.on.relation_changed(relation, remote_unit=0),
            state(container, relation, leader=unit_id == 0, config=worker),
        )
        unit_data[unit_id] = out.get_relation(relation.id).local_unit_data
        if unit_id:
            assert out.get_relation(relation.id).local_app_data == {}  # only the leader
    # What Prometheus does with a `*` target: one target per unit that gave an address.
    targets = sorted(
        f"{data['prometheus_scrape_unit_address']}:8080" for data in unit_data.values()
    )
    assert targets == [
        f"trino-k8s-{n}.trino-k8s-endpoints.lake.svc.cluster.local:8080" for n in range(3)
    ]
    assert {data["prometheus_scrape_unit_name"] for data in unit_data.values()} == {
        "trino-k8s/0",
        "trino-k8s/1",
        "trino-k8s/2",
    }


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (
            "all",
            {
                "TrinoNodeDown",
                "TrinoHeapNearLimit",
                "TrinoCoordinatorDown",
                "TrinoNodesLost",
                "TrinoFailedQueryRate",
                "TrinoQueuedQueriesGrowing",
            },
        ),
        (
            "coordinator",
            {
                "TrinoNodeDown",
                "TrinoHeapNearLimit",
                "TrinoCoordinatorDown",
                "TrinoNodesLost",
                "TrinoFailedQueryRate",
                "TrinoQueuedQueriesGrowing",
                "TrinoNoWorkers",
            },
        ),
        ("worker", {"TrinoNodeDown", "TrinoHeapNearLimit"}),
    ],
)
def test_alert_rules_fit_the_role(ctx, container, trino, function, expected):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = ctx.run(
        ctx.on.config_changed(),
        state(container, relation, leader=True, config={"charm-function": function}),
    )

    assert {rule["alert"] for rule in alert_rules(out.get_relation(relation.id))} == expected


def test_alert_rules_are_scoped_labelled_and_read_metrics_trino_exports(ctx, container, trino):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = ctx.run(
        ctx.on.config_changed(),
        state(container, relation, leader=True, config={"charm-function": "coordinator"}),
    )

    rules = alert_rules(out.get_relation(relation.id))
    assert rules
    for rule in rules:
        for label, value in TOPOLOGY.items():
            assert rule["labels"][label] == value
        assert rule["labels"]["juju_charm"] == "trino-k8s"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["for"]
        assert rule["annotations"]["summary"]
        assert "`" in rule["annotations"]["description"]  # names a command to run
        found = selectors(rule["expr"])
        assert found, rule["alert"]
        for selector in found:
            assert selector.name in TRINO_METRICS, (rule["alert"], selector.name)
            # Scoped to this application: another Trino in Prometheus never fires it.
            assert TOPOLOGY.items() <= matchers(selector).items(), rule["alert"]


def test_a_non_leader_writes_only_its_unit_data(ctx, container, trino):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    worker = {"charm-function": "worker"}

    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0), state(container, relation, config=worker)
    )

    published = out.get_relation(relation.id)
    assert published.local_app_data == {}
    assert set(published.local_unit_data) >= {
        "prometheus_scrape_unit_address",
        "prometheus_scrape_unit_name",
    }


def test_a_standby_coordinator_is_not_scraped(ctx, container, trino):
    """It runs no Trino by design: Prometheus must not alert that it is down."""
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = ctx.run(ctx.on.relation_joined(relation, remote_unit=0), state(container, relation))

    assert out.unit_status.message.startswith("standby:")
    published = out.get_relation(relation.id).local_unit_data
    assert "prometheus_scrape_unit_address" not in published


def test_a_hook_with_nothing_new_writes_no_relation_data(ctx, container, trino, relation_writes):
    scrape = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    dashboard = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    first = ctx.run(
        ctx.on.config_changed(), state(container, scrape, dashboard, tempo(), leader=True)
    )
    assert relation_writes  # the first hook published
    relation_writes.clear()

    second = ctx.run(ctx.on.update_status(), first)

    assert relation_writes == []
    assert second.get_relation(dashboard.id).local_app_data == (
        first.get_relation(dashboard.id).local_app_data
    )


# grafana-dashboard


def dashboard_of(relation: testing.Relation) -> tuple[dict, dict]:
    payload = json.loads(relation.local_app_data["dashboards"])
    (template,) = payload["templates"].values()
    return payload, template


def test_dashboard_is_compressed_grafana_json_reading_real_trino_metrics(ctx, container, trino):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")

    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0), state(container, relation, leader=True)
    )

    payload, template = dashboard_of(out.get_relation(relation.id))
    assert list(payload["templates"]) == ["file:trino.json"]
    assert template["charm"] == "trino-k8s"
    assert template["inject_dropdowns"] is True  # Grafana adds the juju_* dropdowns
    assert template["juju_topology"] == {
        "model": "lake",
        "model_uuid": TOPOLOGY["juju_model_uuid"],
        "application": "trino-k8s",
        "unit": "trino-k8s/0",
    }
    assert len(template["dashboard_alt_uid"]) == 40
    dashboard = json.loads(LZMABase64.decompress(template["content"]))
    assert dashboard["title"] == "Trino"
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {
        "Active nodes",
        "Running queries",
        "Queued queries",
        "Query throughput and failures",
        "CPU",
        "Heap",
        "Input rate",
    } <= titles
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 15
    for expression in expressions:
        for selector in selectors(expression):
            assert selector.name in TRINO_METRICS, selector.name
            # Follows the topology dropdowns Grafana injects.
            assert matchers(selector) == {
                "juju_model": "$juju_model",
                "juju_model_uuid": "$juju_model_uuid",
                "juju_application": "$juju_application",
                "juju_unit": "$juju_unit",
            }
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${prometheusds}"}
            assert panel["description"]


def test_dashboard_uuid_changes_only_when_the_dashboard_changes(ctx, container, trino):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    first = ctx.run(ctx.on.config_changed(), state(container, relation, leader=True))
    payload, _ = dashboard_of(first.get_relation(relation.id))

    again = ctx.run(ctx.on.config_changed(), first)
    assert dashboard_of(again.get_relation(relation.id))[0]["uuid"] == payload["uuid"]

    stale = dict(payload, templates={"file:trino.json": {"content": "old"}})
    changed_relation = testing.Relation(
        "grafana-dashboard",
        remote_app_name="grafana",
        id=relation.id,
        local_app_data={"dashboards": json.dumps(stale)},
    )
    changed = ctx.run(ctx.on.upgrade_charm(), state(container, changed_relation, leader=True))
    new_payload, _ = dashboard_of(changed.get_relation(relation.id))
    assert new_payload["uuid"] != payload["uuid"]
    assert new_payload["templates"] == payload["templates"]


def test_dashboard_shows_query_states_under_the_names_trino_exports(ctx, container, trino):
    """Trino's DispatchManager has FullyBlockedQueries; a real scrape has no BlockedQueries."""
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")

    out = ctx.run(ctx.on.config_changed(), state(container, relation, leader=True))

    _, template = dashboard_of(out.get_relation(relation.id))
    dashboard = json.loads(LZMABase64.decompress(template["content"]))
    (panel,) = [
        p for p in dashboard["panels"] if p["title"] == "Running, queued and blocked queries"
    ]
    shown = {
        target["legendFormat"]: {s.name for s in selectors(target["expr"])}
        for target in panel["targets"]
    }
    assert shown == {
        "running": {"trino_execution_name_QueryManager_RunningQueries"},
        "queued": {"trino_execution_name_QueryManager_QueuedQueries"},
        "fully blocked": {"trino_execution_name_QueryManager_FullyBlockedQueries"},
    }


def test_only_the_leader_publishes_the_dashboard(ctx, container, trino):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")

    out = ctx.run(ctx.on.relation_joined(relation, remote_unit=0), state(container, relation))

    assert out.get_relation(relation.id).local_app_data == {}


# logging (Loki)


def loki(*unit_ids: int, relation_id: int | None = None) -> testing.Relation:
    extra = {"id": relation_id} if relation_id is not None else {}
    return testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={
            n: {"endpoint": json.dumps({"url": LOKI_URL.format(n)})} for n in unit_ids
        },
        **extra,
    )


def log_targets(out: testing.State) -> dict[str, dict]:
    plan = out.get_container("trino").plan
    return {name: target.to_dict() for name, target in plan.log_targets.items()}


def test_logs_go_to_every_loki_unit_with_topology_labels_without_a_restart(
    ctx, running, pebble_calls
):
    relation = loki(0, 1)
    container = running.get_container("trino")

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=1),
        testing.State(
            model=MODEL,
            leader=True,
            containers={container},
            relations={relation},
            secrets=running.secrets,
        ),
    )

    targets = log_targets(out)
    assert set(targets) == {"loki-0", "loki-1"}
    for n in (0, 1):
        assert targets[f"loki-{n}"]["type"] == "loki"
        assert targets[f"loki-{n}"]["location"] == LOKI_URL.format(n)
        assert targets[f"loki-{n}"]["services"] == ["all"]
        assert targets[f"loki-{n}"]["labels"] == {
            **TOPOLOGY,
            "juju_unit": "trino-k8s/0",
            "charm": "trino-k8s",
        }
    assert "trino-logging" in out.get_container("trino").layers
    assert pebble_calls.restarts == []
    assert pebble_calls.replans == 0


def test_a_changed_loki_address_updates_its_target(ctx, running, pebble_calls):
    relation = loki(0)
    first = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(
            model=MODEL,
            leader=True,
            containers={running.get_container("trino")},
            secrets=running.secrets,
            relations={relation},
        ),
    )
    moved = testing.Relation(
        "logging",
        remote_app_name="loki",
        id=relation.id,
        remote_units_data={
            0: {"endpoint": json.dumps({"url": "http://10.1.2.3:3100/loki/api/v1/push"})}
        },
    )

    out = ctx.run(
        ctx.on.relation_changed(moved, remote_unit=0),
        testing.State(
            model=MODEL,
            leader=True,
            containers={first.get_container("trino")},
            secrets=first.secrets,
            relations={moved},
        ),
    )

    assert log_targets(out)["loki-0"]["location"] == "http://10.1.2.3:3100/loki/api/v1/push"
    assert pebble_calls.restarts == []


def test_a_departed_loki_unit_stops_being_fed(ctx, running, pebble_calls):
    both = loki(0, 1)
    first = ctx.run(
        ctx.on.relation_changed(both, remote_unit=1),
        testing.State(
            model=MODEL,
            leader=True,
            containers={running.get_container("trino")},
            secrets=running.secrets,
            relations={both},
        ),
    )
    one_left = loki(0, relation_id=both.id)

    out = ctx.run(
        ctx.on.relation_departed(one_left, remote_unit=1, departing_unit=1),
        testing.State(
            model=MODEL,
            leader=True,
            containers={first.get_container("trino")},
            secrets=first.secrets,
            relations={one_left},
        ),
    )

    targets = log_targets(out)
    assert targets["loki-0"]["services"] == ["all"]
    assert targets["loki-1"]["services"] == ["-all"]
    assert targets["loki-1"]["location"] == LOKI_URL.format(1)
    assert pebble_calls.restarts == []


def test_removing_the_logging_relation_stops_every_target(ctx, running, pebble_calls):
    relation = loki(0)
    first = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(
            model=MODEL,
            leader=True,
            containers={running.get_container("trino")},
            secrets=running.secrets,
            relations={relation},
        ),
    )

    out = ctx.run(
        ctx.on.relation_broken(relation),
        testing.State(
            model=MODEL,
            leader=True,
            containers={first.get_container("trino")},
            secrets=first.secrets,
            relations={relation},
        ),
    )

    assert log_targets(out)["loki-0"]["services"] == ["-all"]
    # Nothing more to turn off: the next hook leaves the plan alone.
    layers_before = dict(out.get_container("trino").layers)
    later = ctx.run(
        ctx.on.update_status(),
        testing.State(
            model=MODEL, leader=True, containers={out.get_container("trino")}, secrets=out.secrets
        ),
    )
    assert later.get_container("trino").layers == layers_before
    assert pebble_calls.restarts == []


def test_a_loki_unit_without_a_readable_endpoint_is_skipped(ctx, running):
    relation = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={
            0: {"endpoint": json.dumps({"url": LOKI_URL.format(0)})},
            1: {"endpoint": "not json"},
            2: {},
        },
    )

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=1),
        testing.State(
            model=MODEL,
            leader=True,
            containers={running.get_container("trino")},
            secrets=running.secrets,
            relations={relation},
        ),
    )

    assert set(log_targets(out)) == {"loki-0"}
    assert out.unit_status == testing.ActiveStatus()


# tracing


def tempo(**kwargs) -> testing.Relation:
    receivers = [{"protocol": {"name": "otlp_grpc", "type": "grpc"}, "url": TEMPO_GRPC}]
    return testing.Relation(
        "tracing",
        remote_app_name="tempo",
        remote_app_data={"receivers": json.dumps(receivers)},
        **kwargs,
    )


def test_tracing_turns_on_opentelemetry_export_with_one_restart(ctx, running, etc, pebble_calls):
    relation = tempo()
    state_in = testing.State(
        model=MODEL,
        leader=True,
        containers={running.get_container("trino")},
        secrets=running.secrets,
        relations={relation},
    )

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state_in)

    config = properties(read_files(etc)["config.properties"])
    assert config["tracing.enabled"] == "true"
    assert config["otel.exporter.endpoint"] == f"http://{TEMPO_GRPC}"
    assert config["otel.exporter.protocol"] == "grpc"
    assert pebble_calls.restarts == [("trino",)]
    # The leader asked Tempo for the receiver Trino speaks.
    assert json.loads(out.get_relation(relation.id).local_app_data["receivers"]) == ["otlp_grpc"]

    ctx.run(ctx.on.update_status(), out)
    assert pebble_calls.restarts == [("trino",)]  # nothing changed: no second restart


def test_without_the_tracing_relation_tracing_is_off(ctx, running, etc, pebble_calls):
    relation = tempo()
    on = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(
            model=MODEL,
            leader=True,
            containers={running.get_container("trino")},
            secrets=running.secrets,
            relations={relation},
        ),
    )
    pebble_calls.restarts.clear()

    ctx.run(
        ctx.on.relation_broken(relation),
        testing.State(
            model=MODEL,
            leader=True,
            containers={on.get_container("trino")},
            secrets=on.secrets,
            relations={relation},
        ),
    )

    config = properties(read_files(etc)["config.properties"])
    assert not {"tracing.enabled", "otel.exporter.endpoint", "otel.exporter.protocol"} & set(
        config
    )
    assert pebble_calls.restarts == [("trino",)]


def test_tracing_waits_for_the_provider_to_publish_a_receiver(ctx, running, etc, pebble_calls):
    relation = testing.Relation("tracing", remote_app_name="tempo")

    ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(
            model=MODEL,
            leader=True,
            containers={running.get_container("trino")},
            secrets=running.secrets,
            relations={relation},
        ),
    )

    assert "tracing.enabled" not in properties(read_files(etc)["config.properties"])
    assert pebble_calls.restarts == []


def test_metadata_declares_the_cos_endpoints():
    metadata = yaml.safe_load((ROOT / "metadata.yaml").read_text())
    assert metadata["provides"]["metrics-endpoint"]["interface"] == "prometheus_scrape"
    assert metadata["provides"]["grafana-dashboard"]["interface"] == "grafana_dashboard"
    assert metadata["requires"]["logging"]["interface"] == "loki_push_api"
    assert metadata["requires"]["tracing"] == {
        "interface": "tracing",
        "limit": 1,
        "description": metadata["requires"]["tracing"]["description"],
    }
