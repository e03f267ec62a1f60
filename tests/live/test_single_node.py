"""One `all` node with the defaults: Pebble's check, the charm's status, queries, a catalog."""

from __future__ import annotations

import ops
import pytest
import trino.dbapi
from conftest import wait_for
from juju import Juju, Unit
from lab import once_listed
from ops import testing


def query(host: str, sql: str, **kwargs) -> list[list]:
    with trino.dbapi.connect(host=host, port=8080, user="live-test", **kwargs) as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def check_status(unit: Unit, name: str = "trino-ready") -> str:
    assert unit.pod is not None
    client = ops.pebble.Client(socket_path=unit.pod.socket)
    checks = client.get_checks(names=[name])
    return str(checks[0].status.value) if checks else "absent"


def boot(juju: Juju, unit: Unit) -> None:
    """The hooks Juju runs on a new unit, in Juju's order."""
    if unit.number == unit.app.leader:
        juju.run(unit, lambda ctx, _: ctx.on.leader_elected())
    juju.run(unit, lambda ctx, _: ctx.on.config_changed())
    juju.run(unit, lambda ctx, _: ctx.on.start())
    juju.run(
        unit, lambda ctx, _: ctx.on.pebble_ready(testing.Container("trino", can_connect=True))
    )


def become_active(juju: Juju, unit: Unit, timeout: float = 240) -> testing.State:
    """update-status until the charm says active (Trino answered /v1/info as started)."""

    def active():
        state = juju.run(unit, lambda ctx, _: ctx.on.update_status())
        return state if isinstance(state.unit_status, testing.ActiveStatus) else None

    return wait_for(f"{unit.name} active", active, timeout=timeout, poll=3)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def node(juju, pods) -> Unit:
    app = juju.deploy("trino", [pods("trino", 0)])
    unit = app.units[0]
    boot(juju, unit)
    return unit


def test_pebble_check_goes_up_and_the_charm_says_active(node, juju):
    assert node.pod is not None
    wait_for("the trino-ready check up", lambda: check_status(node) == "up", timeout=240)
    state = become_active(juju, node)
    assert state.unit_status == testing.ActiveStatus()
    assert state.workload_version, "the charm reads Trino's version from /v1/info"


def test_select_one(node):
    assert node.pod is not None
    ip = node.pod.ip
    assert once_listed(lambda: query(ip, "SELECT 1")) == [[1]]


def test_add_catalog_restarts_and_serves_tpch(node, juju):
    assert node.pod is not None
    client = ops.pebble.Client(socket_path=node.pod.socket)
    started_before = client.get_services(["trino"])[0].current
    result = juju.action(node, "add-catalog", {"name": "tpch", "connector": "tpch"})
    assert not isinstance(result, testing.ActionFailed), result
    assert (node.pod.etc / "catalog" / "tpch.properties").exists()

    def tpch_answers():
        try:
            return query(node.pod.ip, "SELECT count(*) FROM tpch.tiny.nation")
        except Exception:
            return None

    rows = wait_for("tpch.tiny.nation after the restart", tpch_answers, timeout=240, poll=3)
    assert rows == [[25]]
    assert started_before == ops.pebble.ServiceStatus.ACTIVE
    state = become_active(juju, node)
    assert state.unit_status == testing.ActiveStatus()
