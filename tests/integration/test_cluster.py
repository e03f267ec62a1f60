"""A coordinator application and a 2-unit worker application, as the README deploys them.

The tests build on each other in one model: deploy and relate, add a catalog on the
coordinator and query it through the workers, then remove a worker while a query runs.
"""

from __future__ import annotations

import json
import pathlib
import shlex
import threading
import time
from typing import Any

import jubilant

COORDINATOR, WORKER = "trino", "trino-worker"
TRINO_IMAGE = "trinodb/trino:483"
DEPLOY_TIMEOUT = 20 * 60
SETTLE_TIMEOUT = 15 * 60
ACTION_TIMEOUT = 5 * 60
# Long enough to be running when the worker goes, short enough for a test.
LONG_QUERY = (
    "SELECT count(*) FROM tpch.sf1.lineitem a JOIN tpch.sf1.orders b ON a.orderkey = b.orderkey"
)


def settled(status: jubilant.Status) -> bool:
    apps = (COORDINATOR, WORKER)
    return jubilant.all_active(status, *apps) and jubilant.all_agents_idle(status, *apps)


def errored(status: jubilant.Status) -> bool:
    return jubilant.any_error(status, COORDINATOR, WORKER)


def query(juju: jubilant.Juju, sql: str) -> list[list[Any]]:
    """Run ``sql`` with the Trino CLI inside the coordinator's container."""
    command = shlex.join(
        [
            "trino",
            "--server=localhost:8080",
            "--user=it",
            "--output-format=JSON",
            f"--execute={sql}",
        ]
    )
    output = juju.ssh(f"{COORDINATOR}/0", command, container="trino")
    return [list(json.loads(line).values()) for line in output.splitlines() if line.strip()]


def test_deploy_a_cluster(juju: jubilant.Juju, charm_path: pathlib.Path) -> None:
    """The deploy commands of contract.md give an active coordinator and active workers."""
    resources = {"trino-image": TRINO_IMAGE}
    juju.deploy(
        charm_path,
        COORDINATOR,
        resources=resources,
        trust=True,
        config={"charm-function": "coordinator"},
    )
    juju.deploy(
        charm_path,
        WORKER,
        resources=resources,
        trust=True,
        num_units=2,
        config={"charm-function": "worker"},
    )
    juju.integrate(f"{COORDINATOR}:trino-coordinator", f"{WORKER}:trino-worker")
    juju.wait(settled, error=errored, timeout=DEPLOY_TIMEOUT)

    nodes = query(juju, "SELECT count(*) FROM system.runtime.nodes WHERE coordinator = false")
    assert nodes == [[2]]


def test_a_catalog_added_on_the_coordinator_is_queryable(juju: jubilant.Juju) -> None:
    """add-catalog on the coordinator reaches every worker; the roll ends active."""
    task = juju.run(
        f"{COORDINATOR}/leader",
        "add-catalog",
        {"name": "tpch", "connector": "tpch"},
        wait=ACTION_TIMEOUT,
    )
    assert task.success, task
    juju.wait(settled, error=errored, timeout=SETTLE_TIMEOUT)

    assert query(juju, "SELECT count(*) FROM tpch.tiny.nation") == [[25]]


def test_a_worker_removed_mid_query_does_not_fail_it(juju: jubilant.Juju) -> None:
    """Scale-down drains the worker: the running query finishes with the right answer."""
    expected = query(juju, "SELECT count(*) FROM tpch.sf1.lineitem")
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(query(juju, LONG_QUERY))
        except Exception as error:
            results.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(5)  # let the query reach the workers
    juju.cli("remove-unit", WORKER, "--num-units", "1")
    thread.join(timeout=SETTLE_TIMEOUT)

    assert results == [expected], results
    juju.wait(settled, error=errored, timeout=SETTLE_TIMEOUT)
    status = juju.status()
    assert len(status.apps[WORKER].units) == 1
