"""Integration tests of trino-k8s with COS Lite pieces: Prometheus, Grafana, Loki.

The tests run in order on one model (skipped without a controller, see conftest.py):
Trino is deployed with prometheus-k8s, grafana-k8s and loki-k8s, then each is asked,
over its own HTTP API, whether it got what the charm publishes.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pathlib
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import jubilant

logger = logging.getLogger(__name__)

APP = "trino"
WORKERS = "trino-worker"
TRINO_IMAGE = "trinodb/trino:483"
PROMETHEUS, GRAFANA, LOKI = "prometheus", "grafana", "loki"
# COS charms' channel; override with TRINO_COS_CHANNEL (e.g. 2/stable).
COS_CHANNEL = os.environ.get("TRINO_COS_CHANNEL", "latest/stable")
DEPLOY_TIMEOUT = 20 * 60
# Scrapes, rule loads and log pushes happen on their own schedule.
POLL_TIMEOUT = 5 * 60
POLL_PERIOD = 10


def address(juju: jubilant.Juju, app: str) -> str:
    """The pod address `juju status` gives for the app's first unit."""
    units = juju.status().apps[app].units
    return next(iter(units.values())).address


def get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (http test URL)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.load(response)


def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after POLL_TIMEOUT."""
    deadline = time.monotonic() + POLL_TIMEOUT
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as error:  # not up yet
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(POLL_PERIOD)
    raise AssertionError(f"{what}: still {last!r} after {POLL_TIMEOUT}s")


def test_deploy_with_cos(juju: jubilant.Juju, charm_path: pathlib.Path) -> None:
    """Trino and the COS pieces deploy and integrate; everything ends active."""
    juju.deploy(charm_path, APP, resources={"trino-image": TRINO_IMAGE}, trust=True)
    juju.deploy("prometheus-k8s", PROMETHEUS, channel=COS_CHANNEL, trust=True)
    juju.deploy("grafana-k8s", GRAFANA, channel=COS_CHANNEL, trust=True)
    juju.deploy("loki-k8s", LOKI, channel=COS_CHANNEL, trust=True)
    juju.integrate(f"{APP}:metrics-endpoint", f"{PROMETHEUS}:metrics-endpoint")
    juju.integrate(f"{APP}:grafana-dashboard", f"{GRAFANA}:grafana-dashboard")
    juju.integrate(f"{APP}:logging", f"{LOKI}:logging")
    juju.integrate(f"{GRAFANA}:grafana-source", f"{PROMETHEUS}:grafana-source")
    juju.wait(
        lambda status: (
            jubilant.all_active(status, APP, PROMETHEUS, GRAFANA, LOKI)
            and jubilant.all_agents_idle(status, APP, PROMETHEUS, GRAFANA, LOKI)
        ),
        error=lambda status: jubilant.any_error(status, APP, PROMETHEUS, GRAFANA, LOKI),
        timeout=DEPLOY_TIMEOUT,
    )


def test_prometheus_scrapes_every_trino_unit(
    juju: jubilant.Juju, charm_path: pathlib.Path
) -> None:
    """Every unit of a worker application is an `up` target (the metrics user is let in).

    A second unit of the single-node application would stand by (one coordinator per
    cluster), so the multi-unit case is a worker application joined to it.
    """
    juju.deploy(
        charm_path,
        WORKERS,
        resources={"trino-image": TRINO_IMAGE},
        trust=True,
        num_units=2,
        config={"charm-function": "worker"},
    )
    juju.integrate(f"{APP}:trino-coordinator", f"{WORKERS}:trino-worker")
    juju.integrate(f"{WORKERS}:metrics-endpoint", f"{PROMETHEUS}:metrics-endpoint")
    juju.wait(lambda status: jubilant.all_active(status, APP, WORKERS), timeout=DEPLOY_TIMEOUT)
    prometheus = f"http://{address(juju, PROMETHEUS)}:9090"

    def trino_targets_up() -> list[dict]:
        targets = get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
        mine = [t for t in targets if t["labels"].get("juju_application") in (APP, WORKERS)]
        return mine if len(mine) == 3 and all(t["health"] == "up" for t in mine) else []

    eventually(trino_targets_up, "three healthy Trino targets (coordinator and two workers)")

    def running_queries_series() -> list[dict]:
        query = urllib.parse.quote(
            f'trino_execution_name_QueryManager_RunningQueries{{juju_application="{APP}"}}'
        )
        return get_json(f"{prometheus}/api/v1/query?query={query}")["data"]["result"]

    eventually(running_queries_series, "trino_execution_name_QueryManager_RunningQueries")


def test_prometheus_loads_the_alert_rules(juju: jubilant.Juju) -> None:
    """The charm's alert rules reach Prometheus, none of them firing on a healthy cluster."""
    prometheus = f"http://{address(juju, PROMETHEUS)}:9090"

    def trino_rules() -> dict[str, str]:
        groups = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
        return {
            rule["name"]: rule["state"]
            for group in groups
            for rule in group["rules"]
            if rule["name"].startswith("Trino")
        }

    rules = eventually(trino_rules, "Trino alert rules in Prometheus")
    assert {"TrinoNodeDown", "TrinoHeapNearLimit", "TrinoCoordinatorDown"} <= set(rules)
    assert rules["TrinoNodeDown"] == "inactive"


def test_grafana_has_the_trino_dashboard(juju: jubilant.Juju) -> None:
    """The dashboard the charm publishes is in Grafana."""
    task = juju.run(f"{GRAFANA}/0", "get-admin-password")
    password = task.results["admin-password"]
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    grafana = f"http://{address(juju, GRAFANA)}:3000"

    def dashboards() -> list[dict]:
        return get_json(
            f"{grafana}/api/search?query=Trino", headers={"Authorization": f"Basic {token}"}
        )

    found = eventually(dashboards, "a Trino dashboard in Grafana")
    assert any(d["title"].startswith("Trino") for d in found)


def test_loki_receives_trino_logs(juju: jubilant.Juju) -> None:
    """Pebble forwards the trino service's logs to Loki with the juju topology labels."""
    loki = f"http://{address(juju, LOKI)}:3100"

    def applications() -> list[str]:
        values = get_json(f"{loki}/loki/api/v1/label/juju_application/values")
        return [v for v in values.get("data", []) if v == APP]

    eventually(applications, "Trino logs in Loki")
