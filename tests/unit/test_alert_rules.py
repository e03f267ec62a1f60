"""The alert rules, evaluated by Prometheus's own `promtool test rules` on made-up series.

promtool comes from Debian's `prometheus` package (`.ci/run` installs it). The rules
are the ones the charm publishes for a dedicated coordinator (every rule file),
annotations left out: promtool compares them verbatim, and their wording is checked
in test_cos.py. What is checked here is that each alert fires when it should, and
only then, with the labels Alertmanager routes on.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from core.observability import Topology, rule_files
from relations.prometheus_scrape import alert_rules

TOPOLOGY = Topology(
    "lake", "7b2c4b3e-1a5d-4c1e-9f0a-0123456789ab", "trino", "trino/0", "trino-k8s"
)
SCOPE = {
    "juju_model": TOPOLOGY.model,
    "juju_model_uuid": TOPOLOGY.model_uuid,
    "juju_application": TOPOLOGY.application,
}
NODE = {**SCOPE, "juju_unit": "trino/0", "instance": "lake_trino_0"}
QM = "trino_execution_name_QueryManager"
ACTIVE = "trino_node_name_CoordinatorNodeManager_ActiveNodeCount"
HEAP = "JMX_java_lang_TYPE_Memory_ATTRIBUTE_HeapMemoryUsage"


def series(name: str, values: str, labels: dict[str, str] = NODE) -> dict[str, str]:
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{selector}}}", "values": values}


def fires(alert: str, labels: dict[str, str], severity: str) -> dict[str, Any]:
    return {
        "alertname": alert,
        "exp_alerts": [
            {"exp_labels": {**labels, "severity": severity, "juju_charm": "trino-k8s"}}
        ],
    }


def quiet(alert: str) -> dict[str, Any]:
    return {"alertname": alert, "exp_alerts": []}


def case(input_series: list[dict], eval_time: str, *expectations: dict) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [{"eval_time": eval_time, **e} for e in expectations],
    }


CASES = {
    "node down for 5 minutes": case(
        [series("up", "1 1 0x10")], "10m", fires("TrinoNodeDown", NODE, "critical")
    ),
    "node down for a minute only": case(
        [series("up", "1 1 0 1x8")], "10m", quiet("TrinoNodeDown")
    ),
    "heap at 95% for long": case(
        [series(f"{HEAP}_used", "95x30"), series(f"{HEAP}_max", "100x30")],
        "25m",
        fires("TrinoHeapNearLimit", NODE, "warning"),
    ),
    "heap at 60%": case(
        [series(f"{HEAP}_used", "60x30"), series(f"{HEAP}_max", "100x30")],
        "25m",
        quiet("TrinoHeapNearLimit"),
    ),
    "no coordinator reports": case(
        [series("up", "1x10")], "10m", fires("TrinoCoordinatorDown", SCOPE, "critical")
    ),
    "a coordinator reports": case([series(ACTIVE, "3x10")], "10m", quiet("TrinoCoordinatorDown")),
    "nodes lost and not back": case(
        [series(ACTIVE, "4x20 2x20")], "35m", fires("TrinoNodesLost", NODE, "warning")
    ),
    "node count steady": case([series(ACTIVE, "4x40")], "35m", quiet("TrinoNodesLost")),
    "coordinator alone": case(
        [series(ACTIVE, "1x10")], "10m", fires("TrinoNoWorkers", NODE, "critical")
    ),
    "coordinator with workers": case([series(ACTIVE, "3x10")], "10m", quiet("TrinoNoWorkers")),
    "half the queries fail": case(
        [
            series(f"{QM}_CompletedQueries", "0+60x30"),
            series(f"{QM}_FailedQueries", "0+30x30"),
            series(f"{QM}_UserErrorFailures", "0+5x30"),
        ],
        "25m",
        fires("TrinoFailedQueryRate", NODE, "warning"),
    ),
    "only user errors fail": case(
        [
            series(f"{QM}_CompletedQueries", "0+60x30"),
            series(f"{QM}_FailedQueries", "0+30x30"),
            series(f"{QM}_UserErrorFailures", "0+30x30"),
        ],
        "25m",
        quiet("TrinoFailedQueryRate"),
    ),
    "queue keeps growing": case(
        [series(f"{QM}_QueuedQueries", "0+1x40")],
        "35m",
        fires("TrinoQueuedQueriesGrowing", NODE, "warning"),
    ),
    "queue long but steady": case(
        [series(f"{QM}_QueuedQueries", "20x40")], "35m", quiet("TrinoQueuedQueriesGrowing")
    ),
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: `apt-get install prometheus` (.ci/run does it)")
    return path


@pytest.fixture
def rules_file(tmp_path: pathlib.Path) -> pathlib.Path:
    rules = alert_rules(TOPOLOGY, rule_files(coordinator=True, include_coordinator=False))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    path = tmp_path / "rules.yaml"
    # Through JSON, as Prometheus gets them from the relation.
    path.write_text(yaml.safe_dump(json.loads(json.dumps(rules))))
    return path


def test_promtool_accepts_the_rules(promtool, rules_file):
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


@pytest.mark.parametrize("name", list(CASES))
def test_alert_fires_exactly_when_it_should(promtool, rules_file, tmp_path, name):
    tests = tmp_path / "tests.yaml"
    tests.write_text(
        yaml.safe_dump(
            {"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": [CASES[name]]}
        )
    )

    result = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
