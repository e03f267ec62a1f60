"""Integration tests of trino-k8s: deploy it, query it, reconfigure it, restart it.

The tests run in order on one model and build on each other: a single Trino unit deployed
by the first test. See README.md beside this file for how to run them.
"""

from __future__ import annotations

import json
import logging
import pathlib
import shlex
from typing import Any

import jubilant
import trino.dbapi
import trino.exceptions
from jubilant.statustypes import UnitStatus

logger = logging.getLogger(__name__)

APP = "trino"
UNIT = f"{APP}/0"
CONTAINER = "trino"
TRINO_IMAGE = "trinodb/trino:483"
TRINO_PORT = 8080
QUERY_USER = "integration"
LOG_PROPERTIES = "/etc/trino/log.properties"

# First deployment: pulling the image and a cold JVM start of Trino take minutes.
DEPLOY_TIMEOUT = 15 * 60
# A config change or a restart: Trino restarts, the image is already on the node.
SETTLE_TIMEOUT = 10 * 60
# How long `juju run` waits for the restart action (Juju's own default is 60s).
ACTION_TIMEOUT = 5 * 60
# Querying Trino over HTTP from the host: connecting fails fast when pods are not routable.
QUERY_CONNECT_TIMEOUT = 10
QUERY_READ_TIMEOUT = 60


def unit_status(status: jubilant.Status) -> UnitStatus | None:
    """The status of the Trino unit, or None while it does not exist yet."""
    app = status.apps.get(APP)
    return app.units.get(UNIT) if app is not None else None


def is_settled_active(status: jubilant.Status) -> bool:
    """Whether the app is active and no hook is running.

    Requiring idle agents too avoids declaring victory on the stale `active` status that is
    still shown right after a `juju config`, before the config-changed hook has started.
    """
    return jubilant.all_active(status, APP) and jubilant.all_agents_idle(status, APP)


def unit_is_blocked(status: jubilant.Status) -> bool:
    """Whether the Trino unit is blocked: waiting for the operator to fix something."""
    unit = unit_status(status)
    return unit is not None and unit.is_blocked


def has_error(status: jubilant.Status) -> bool:
    """Whether the app or its unit is in error, to fail fast instead of waiting for a timeout."""
    return jubilant.any_error(status, APP)


def wait_active(juju: jubilant.Juju, timeout: float) -> jubilant.Status:
    """Wait until Trino is active and settled; raise on an error status or after `timeout`."""
    return juju.wait(is_settled_active, error=has_error, timeout=timeout)


def query(juju: jubilant.Juju, sql: str) -> list[list[Any]]:
    """Run `sql` on the Trino unit like a user would, and return the rows.

    It first connects from the test host to the pod IP that `juju status` reports, with the
    Trino Python client. That works when the controller runs on a local MicroK8s or Canonical
    Kubernetes, whose pod network is routed from the host. If the pod IP is not reachable (a
    remote cluster, say), it falls back to the Trino CLI inside the workload container.
    """
    unit = unit_status(juju.status())
    host = unit.address if unit is not None else ""
    if host:
        try:
            return _query_over_http(host, sql)
        except trino.exceptions.TrinoConnectionError as exc:
            logger.info("Trino at %s:%d not reachable from here (%s)", host, TRINO_PORT, exc)
    logger.info("querying Trino with its CLI inside the %r container", CONTAINER)
    return _query_in_container(juju, sql)


def _query_over_http(host: str, sql: str) -> list[list[Any]]:
    """Run `sql` with the Trino Python client against `host`; one attempt, short timeouts."""
    conn = trino.dbapi.connect(
        host=host,
        port=TRINO_PORT,
        user=QUERY_USER,
        max_attempts=1,
        request_timeout=(QUERY_CONNECT_TIMEOUT, QUERY_READ_TIMEOUT),
    )
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return [list(row) for row in cursor.fetchall()]
    finally:
        conn.close()


def _query_in_container(juju: jubilant.Juju, sql: str) -> list[list[Any]]:
    """Run `sql` with the Trino CLI that the image ships (/usr/bin/trino), via `juju ssh`.

    `juju ssh` into a Kubernetes container joins the arguments and runs them with `sh -c`,
    hence one shell-quoted command. The JSON output format prints one object per row, with
    typed values (1, not "1"), in column order; columns must have distinct names.
    """
    command = shlex.join(
        [
            "trino",
            f"--server=localhost:{TRINO_PORT}",
            f"--user={QUERY_USER}",
            "--output-format=JSON",
            f"--execute={sql}",
        ]
    )
    output = juju.ssh(UNIT, command, container=CONTAINER)
    return [list(json.loads(line).values()) for line in output.splitlines() if line.strip()]


def test_deploy(juju: jubilant.Juju, charm_path: pathlib.Path) -> None:
    """The charm deploys with the official image and becomes active once Trino serves."""
    juju.deploy(charm_path, APP, resources={"trino-image": TRINO_IMAGE}, trust=True)
    wait_active(juju, DEPLOY_TIMEOUT)


def test_query(juju: jubilant.Juju) -> None:
    """An active unit answers SQL queries: active must mean usable."""
    assert query(juju, "SELECT 1") == [[1]]


def test_log_level_config(juju: jubilant.Juju) -> None:
    """Setting log-level to debug turns on DEBUG logging of Trino's own io.trino logger."""
    juju.config(APP, {"log-level": "debug"})
    wait_active(juju, SETTLE_TIMEOUT)

    log_properties = juju.ssh(UNIT, f"cat {LOG_PROPERTIES}", container=CONTAINER)
    assert "io.trino=DEBUG" in log_properties


def test_invalid_heap_percentage_blocks(juju: jubilant.Juju) -> None:
    """An out-of-range heap-percentage blocks the unit and names the option to fix.

    Trino keeps serving with the last good configuration meanwhile, and resetting the option
    makes the unit active again.
    """
    juju.config(APP, {"heap-percentage": 99})
    status = juju.wait(unit_is_blocked, error=has_error, timeout=SETTLE_TIMEOUT)
    unit = unit_status(status)
    assert unit is not None
    assert "heap-percentage" in unit.workload_status.message
    assert query(juju, "SELECT 1") == [[1]]

    juju.config(APP, reset="heap-percentage")
    wait_active(juju, SETTLE_TIMEOUT)


def test_restart_action(juju: jubilant.Juju) -> None:
    """The restart action succeeds and Trino serves queries again afterwards."""
    task = juju.run(UNIT, "restart", wait=ACTION_TIMEOUT)
    assert task.success, task

    wait_active(juju, SETTLE_TIMEOUT)
    assert query(juju, "SELECT 1") == [[1]]
