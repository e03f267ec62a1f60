"""COS on one real `all` node: a real Prometheus scrapes it, a Loki receiver gets its logs.

Prometheus is the Debian `prometheus` binary, run by the test with its own config,
storage and port; its config is built from what the charm publishes on
`metrics-endpoint`, the way Prometheus' charm builds it (prometheus_scrape v0: the
`*` host of each job becomes one job per unit that wrote its address, labelled
with the topology of `scrape_metadata` and `juju_unit`). It resolves the units'
DNS names through the pods' hosts file, as it would through Kubernetes DNS.

The live tier runs Trino 476 (see tests/live/image/launcher), the charm targets 483,
and two metric differences between them come from Trino, not from the charm's files
(checked in trino-main-483.jar and the airlift sources; Trino 483 uses airlift 439,
476 uses airlift 336):

- the node counts are `io.trino.node.CoordinatorNodeManager` in 483
  (`trino_node_name_CoordinatorNodeManager_*`), `trino.metadata:name=DiscoveryNodeManager`
  in 476, with the same attributes: Prometheus renames them at scrape time
  (`NODE_MANAGER_476`), so the rules run on the real series;
- composite JMX attributes (`HeapMemoryUsage` -> `..._HeapMemoryUsage_used`) are exported
  from airlift 343 on: 476 cannot export them (`ABSENT_IN_476`).

Loki is a small HTTP receiver of Loki's push API (what Pebble's `loki` log
target POSTs: JSON `{"streams": [{"stream": labels, "values": [[ns, line]]}]}`)
on the bridge address, which the pod's Pebble reaches from the pod's network.
"""

from __future__ import annotations

import datetime
import gzip
import http.server
import json
import pathlib
import re
import shutil
import socket
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import netlab
import promql_parser
import pytest
import yaml
from conftest import wait_for
from cosl import JujuTopology
from juju import MODEL, Juju, Unit
from ops import testing
from test_single_node import become_active, boot

from core.observability import Topology, scope_expression
from relations.prometheus_scrape import RULES_DIR, alert_rules

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "src" / "grafana_dashboards" / "trino.json"
# Scrapes have time to finish on a loaded machine (a missed one would make the
# down/absent alerts pending); rules are evaluated often, so waits stay short.
SCRAPE_INTERVAL = "5s"
EVALUATION_INTERVAL = "1s"
# The version bridge for metrics (module docstring): 476's name -> 483's.
NODE_MANAGER_476 = {
    "source_labels": ["__name__"],
    "regex": "trino_metadata_name_DiscoveryNodeManager_(.+)",
    "target_label": "__name__",
    "replacement": "trino_node_name_CoordinatorNodeManager_${1}",
}
ABSENT_IN_476 = {
    f"JMX_java_lang_TYPE_Memory_ATTRIBUTE_HeapMemoryUsage_{item}"
    for item in ("used", "committed", "max")
}


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def metric_names(expression: str) -> set[str]:
    """The metric of every series selector in a PromQL expression."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expression), visit)
    return names


# Prometheus.


def when(timestamp: str) -> datetime.datetime:
    """A time Prometheus' API gives (RFC 3339, nanoseconds)."""
    return datetime.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", timestamp))


# The job keys Prometheus' charm keeps (prometheus_scrape v0, LIBPATCH 61); it drops others.
JOB_KEYS = {
    "job_name",
    "metrics_path",
    "static_configs",
    "scrape_interval",
    "scrape_timeout",
    "proxy_url",
    "relabel_configs",
    "metric_relabel_configs",
    "sample_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "scheme",
    "basic_auth",
    "tls_config",
    "authorization",
    "params",
}
# The last relabelling of a per-unit job: `instance` names the unit by its topology.
INSTANCE = {
    "source_labels": ["juju_model", "juju_model_uuid", "juju_application", "juju_unit"],
    "separator": "_",
    "target_label": "instance",
    "regex": "(.*)",
}


def scrape_configs(app_data: dict[str, str], unit_data: dict[str, dict[str, str]]) -> list:
    """Prometheus' scrape_configs for one metrics-endpoint relation, as its charm makes them.

    Each job keeps the keys Prometheus' charm allows and is prefixed with the
    topology identifier; a `*` target becomes one job
    per unit that published an address, labelled with the topology and juju_unit,
    whose `instance` is relabelled to the unit's topology.
    """
    topology = JujuTopology.from_dict(json.loads(app_data["scrape_metadata"]))
    hosts = {
        data.get("prometheus_scrape_unit_name") or unit: data["prometheus_scrape_unit_address"]
        for unit, data in sorted(unit_data.items())
        if data.get("prometheus_scrape_unit_address")
    }
    configs = []
    for published in json.loads(app_data["scrape_jobs"]):
        job = {key: value for key, value in published.items() if key in JOB_KEYS}
        name = f"juju_{topology.identifier}_prometheus_scrape_{job['job_name']}"
        for static in job["static_configs"]:
            wildcards = [t for t in static["targets"] if t.startswith("*")]
            assert wildcards == static["targets"], "the charm publishes only `*` targets"
            for unit, address in hosts.items():
                labels = {**topology.label_matcher_dict, "juju_unit": unit}
                configs.append(
                    {
                        **job,
                        "job_name": f"{name}-{unit.split('/')[-1]}",
                        "static_configs": [
                            {
                                "targets": [t.replace("*", address) for t in wildcards],
                                "labels": {**labels, **static.get("labels", {})},
                            }
                        ],
                        "relabel_configs": [*job.get("relabel_configs", []), INSTANCE],
                    }
                )
    return configs


class Prometheus:
    """The Debian `prometheus` binary with the test's config, storage and port."""

    def __init__(self, root: pathlib.Path, hosts_file: pathlib.Path):
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail(
                "prometheus is not installed: `apt-get install -y --no-install-recommends "
                "prometheus` (the test runs the binary itself, not the Debian service)"
            )
        self.binary = binary
        self.root = root
        self.hosts_file = hosts_file
        self.port = free_port("127.0.0.1")
        self.process: subprocess.Popen | None = None

    @property
    def log(self) -> pathlib.Path:
        return self.root / "prometheus.log"

    def start(self, scrape: list[dict], rules: list[dict]) -> None:
        rule_files = []
        for number, document in enumerate(rules):
            path = self.root / f"rules-{number}.yaml"
            path.write_text(yaml.safe_dump(document))
            rule_files.append(str(path))
        config = {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "evaluation_interval": EVALUATION_INTERVAL,
            },
            "rule_files": rule_files,
            "scrape_configs": scrape,
        }
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(config))
        # Its own mount namespace: the pods' hosts file is its DNS, as Kubernetes DNS would be.
        command = " ".join(
            [
                f"mount --bind {self.hosts_file} /etc/hosts &&",
                f"exec {self.binary}",
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ]
        )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", command],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for("Prometheus ready", self._ready, timeout=60, poll=0.5)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"Prometheus exited: {self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                return True
        except OSError:
            return False

    def api(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        query = urllib.parse.urlencode(params or [])
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# Loki.


class LokiReceiver(http.server.ThreadingHTTPServer):
    """Loki's push API, enough for Pebble: it records every stream it is sent."""

    def __init__(self, host: str):
        self.streams: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        super().__init__((host, 0), PushHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/loki/api/v1/push"

    def lines(self) -> list[tuple[dict[str, str], str]]:
        with self.lock:
            return [(s["stream"], line) for s in self.streams for _, line in s["values"]]


class PushHandler(http.server.BaseHTTPRequestHandler):
    server: LokiReceiver

    def do_POST(self) -> None:
        if self.path != "/loki/api/v1/push":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        try:
            streams = json.loads(body)["streams"]
        except (ValueError, KeyError) as error:
            self.send_error(400, str(error))
            return
        with self.server.lock:
            self.server.streams.extend(streams)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


# Fixtures.


@pytest.fixture(scope="module")
def node(juju: Juju, pods) -> Unit:
    app = juju.deploy("trino", [pods("trino", 0)], {"graceful-shutdown-period": "5s"})
    unit = app.units[0]
    boot(juju, unit)
    become_active(juju, unit)
    return unit


@pytest.fixture(scope="module")
def prometheus(pods, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), pods.lab / "hosts")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def loki(lab) -> Iterator[LokiReceiver]:
    server = LokiReceiver(netlab.HOST_IP)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def topology_of(unit: Unit) -> Topology:
    assert unit.state is not None
    model = unit.state.model
    return Topology(model.name, model.uuid, unit.app.name, unit.name, "trino-k8s")


# Point 6: metrics.


def test_prometheus_scrapes_every_metric_the_rules_and_dashboard_read(node, juju, prometheus):
    juju.remote_app("prometheus")
    relation = juju.integrate(
        "trino", "metrics-endpoint", "prometheus", "metrics-endpoint", "prometheus_scrape"
    )
    juju.settle()
    published = relation.app_data["trino"]
    scrape = scrape_configs(published, relation.unit_data)
    for job in scrape:
        job["metric_relabel_configs"] = [*job.get("metric_relabel_configs", []), NODE_MANAGER_476]
    assert [c["static_configs"][0]["labels"]["juju_unit"] for c in scrape] == ["trino/0"]
    topology = topology_of(node)
    # What Prometheus' charm loads (the rules for this role), and the dedicated
    # coordinator's rule file, so every rule file runs on the real series.
    workers = alert_rules(topology, ["trino_workers.rules"])
    prometheus.start(scrape, [json.loads(published["alert_rules"]), workers])

    def scraped():
        targets = prometheus.api("targets")["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    try:
        targets = wait_for("Prometheus' scrape of trino/0 up", scraped, timeout=90)
    finally:
        print(json.dumps(prometheus.api("targets")["activeTargets"], indent=1))
    assert [t["labels"]["juju_unit"] for t in targets] == ["trino/0"]  # type: ignore[union-attr]

    used = set()
    for path in sorted(RULES_DIR.glob("*.rules")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                used |= metric_names(scope_expression(rule["expr"], topology))
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            used |= metric_names(target["expr"])
    scope = f'juju_model="{MODEL}",juju_application="trino",juju_unit="trino/0"'
    seen = datetime.datetime.now(datetime.timezone.utc)
    series = prometheus.api(
        "series", [("match[]", f'{{__name__="{name}",{scope}}}') for name in sorted(used)]
    )
    missing = used - {s["__name__"] for s in series}
    print("read by the rules and the dashboard, absent from the scrape:", sorted(missing))
    print("  of which Trino 476 cannot export (composite JMX):", sorted(missing & ABSENT_IN_476))
    assert sorted(missing - ABSENT_IN_476) == []
    assert used & ABSENT_IN_476 <= missing, "476 exports them now: drop them from ABSENT_IN_476"

    def evaluated():  # on the series found above: evaluated since then
        groups = prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(when(r["lastEvaluation"]) > seen for r in rules) else None

    rules = wait_for("every rule evaluated on the series", evaluated, timeout=30, poll=0.5)
    print(json.dumps(rules, indent=1))
    health = {r["name"]: (r["health"], r.get("lastError", "")) for r in rules}  # type: ignore[union-attr]
    assert health == dict.fromkeys(health, ("ok", ""))
    states = {r["name"]: r["state"] for r in rules}  # type: ignore[union-attr]
    # A healthy lone node raises nothing; the rule for a coordinator without workers
    # sees it count only itself (pending: `for: 5m`).
    assert states.pop("TrinoNoWorkers") == "pending"
    assert states == dict.fromkeys(states, "inactive")
    assert set(states) == {
        "TrinoNodeDown",
        "TrinoHeapNearLimit",
        "TrinoCoordinatorDown",
        "TrinoNodesLost",
        "TrinoFailedQueryRate",
        "TrinoQueuedQueriesGrowing",
    }


# Point 7: logs.


def test_trino_logs_reach_loki_with_the_charm_labels(node, juju, loki):
    assert node.pod is not None
    juju.remote_app("loki")
    relation = juju.integrate("trino", "logging", "loki", "logging", "loki_push_api")
    relation.unit_data["loki/0"]["endpoint"] = json.dumps({"url": loki.url})
    juju.settle()
    # Pebble forwards what a service prints after the target exists: restart Trino.
    result = juju.action(node, "restart")
    assert not isinstance(result, testing.ActionFailed), result
    juju.settle()

    def started_line():
        return [(labels, line) for labels, line in loki.lines() if "SERVER STARTED" in line]

    found = wait_for("Trino's SERVER STARTED line at the Loki receiver", started_line, timeout=240)
    labels, _ = found[0]  # type: ignore[index]
    assert labels == {
        "juju_model": MODEL,
        "juju_model_uuid": topology_of(node).model_uuid,
        "juju_application": "trino",
        "juju_unit": "trino/0",
        "charm": "trino-k8s",
        "pebble_service": "trino",
    }
    assert len(loki.lines()) > 10  # Trino's start-up log, not one stray line
    become_active(juju, node)
