"""Issue 15: config overrides, resource groups and session property rules on one `all` node.

Trino's file managers read their JSON once, at start (483: `FileResourceGroupConfig` and
`FileSessionPropertyManagerConfig` have `config-file` and nothing else), so a change
takes effect through the charm's restart: the test checks the new rules after a new JVM.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from conftest import wait_for
from juju import Juju, Unit
from lab import trino_pid
from ops import testing
from sql import QueryError, execute
from test_single_node import become_active, boot


def groups(limited: int) -> str:
    """`slow-*` users share a group of `limited` queries at a time; everyone else is free."""
    return json.dumps(
        {
            "rootGroups": [
                {
                    "name": "global",
                    "softMemoryLimit": "80%",
                    "hardConcurrencyLimit": 100,
                    "maxQueued": 100,
                    "subGroups": [
                        {
                            "name": "limited",
                            "softMemoryLimit": "50%",
                            "hardConcurrencyLimit": limited,
                            "maxQueued": 10,
                        },
                        {
                            "name": "other",
                            "softMemoryLimit": "50%",
                            "hardConcurrencyLimit": 100,
                            "maxQueued": 100,
                        },
                    ],
                }
            ],
            "selectors": [
                {"user": "slow-.*", "group": "global.limited"},
                {"group": "global.other"},
            ],
        }
    )


def rules(timeout: str) -> str:
    return json.dumps(
        [{"user": "alice", "sessionProperties": {"query_max_execution_time": timeout}}]
    )


CONFIG = {
    "catalog-config": "tpch:\n  connector: tpch\n",
    "config-overrides": "query.max-run-time=42m\n",
    "resource-groups": groups(limited=1),
    "session-properties": rules("17m"),
    "graceful-shutdown-period": "5s",
}
# The JVM before the override Trino refuses, for the test after it.
JVM: dict[str, int] = {}
SLOW = "SELECT count(*) FROM tpch.sf1000.lineitem WHERE comment LIKE '%knob%'"


@pytest.fixture(scope="module")
def node(juju: Juju, pods) -> Unit:
    app = juju.deploy("trino", [pods("trino", 0)], config=CONFIG)
    unit = app.units[0]
    boot(juju, unit)
    become_active(juju, unit)
    return unit


def base(unit: Unit) -> str:
    assert unit.pod is not None
    return f"http://{unit.pod.ip}:8080"


def session(unit: Unit, user: str) -> dict[str, tuple[str, str]]:
    """SHOW SESSION as `user`: property -> (value, default)."""
    rows = execute(base(unit), "SHOW SESSION", user=user)
    return {row[0]: (row[1], row[2]) for row in rows}


def first_session(unit: Unit, user: str) -> dict[str, tuple[str, str]]:
    """SHOW SESSION right after a start: Trino may not list itself as a node yet."""
    started = time.monotonic()

    def answered():
        try:
            return session(unit, user)
        except (QueryError, OSError) as error:
            print(f"SHOW SESSION after {time.monotonic() - started:.0f}s: {error}")
            return None

    return wait_for("SHOW SESSION after the start", answered, timeout=180, poll=2)


def submit(unit: Unit, sql: str, user: str) -> str:
    """Send a query without waiting for its end; its nextUri (to cancel it).

    Trino dispatches a query (resource group, queue) when the client first follows
    the nextUri of the POST, so this follows it once.
    """
    headers = {"X-Trino-User": user, "Content-Type": "text/plain"}
    request = urllib.request.Request(
        f"{base(unit)}/v1/statement", data=sql.encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        next_uri = json.load(response)["nextUri"]
    request = urllib.request.Request(next_uri, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response).get("nextUri", next_uri)


def cancel(next_uri: str) -> None:
    request = urllib.request.Request(next_uri, method="DELETE", headers={"X-Trino-User": "x"})
    with urllib.request.urlopen(request, timeout=30):
        pass


def states(unit: Unit, users: tuple[str, ...]) -> dict[str, str]:
    """The state of each user's unfinished query (system.runtime.queries, as an observer)."""
    rows = execute(
        base(unit),
        'SELECT "user", state FROM system.runtime.queries '
        "WHERE state NOT IN ('FINISHED', 'FAILED')",
        user="observer",
    )
    return {row[0]: row[1] for row in rows if row[0] in users}


def test_an_override_is_trinos_default(node: Unit):
    assert node.pod is not None
    assert "query.max-run-time=42m" in (node.pod.etc / "config.properties").read_text()
    value, default = session(node, "bob")["query_max_run_time"]
    print(f"query_max_run_time: value {value}, default {default}")
    assert default.startswith("42"), default
    assert value == default


def test_a_session_rule_sets_a_default_for_its_user_only(node: Unit):
    alice = session(node, "alice")["query_max_execution_time"]
    bob = session(node, "bob")["query_max_execution_time"]
    print(f"query_max_execution_time: alice {alice}, bob {bob}")
    assert alice[0] == "17m"
    assert bob[0] == bob[1] != "17m"  # bob gets Trino's default


def test_a_resource_group_of_one_queues_the_second_query(node: Unit):
    first = submit(node, SLOW, "slow-1")
    second = ""
    try:
        wait_for(
            "the first slow query running",
            lambda: states(node, ("slow-1",)).get("slow-1") == "RUNNING",
            timeout=60,
            poll=1,
        )
        second = submit(node, SLOW, "slow-2")
        seen = wait_for(
            "the second slow query queued",
            lambda: (s := states(node, ("slow-1", "slow-2"))).get("slow-2") and s,
            timeout=30,
            poll=1,
        )
        print(f"states: {seen}")
        assert seen == {"slow-1": "RUNNING", "slow-2": "QUEUED"}
    finally:
        for uri in (first, second):
            if uri:
                cancel(uri)


def test_an_override_trino_refuses_blocks_with_trinos_reason(node: Unit, juju: Juju):
    assert node.pod is not None
    JVM["before"] = trino_pid(node.pod)
    started = time.monotonic()
    juju.config("trino", **{"config-overrides": "query.max-run-tim=42m\n"})

    def blocked() -> str:
        state = juju.run(node, lambda ctx, _: ctx.on.update_status())
        status = state.unit_status
        return status.message if isinstance(status, testing.BlockedStatus) else ""

    message = str(wait_for("the unit blocked", blocked, timeout=180, poll=2))
    print(f"status after {time.monotonic() - started:.0f}s: {message}")
    assert message.startswith("restart failed")
    assert "Trino says:" in message
    assert "Configuration property 'query.max-run-tim' was not used" in message


def test_the_fix_and_changed_rules_take_effect_after_the_charms_restart(node: Unit, juju: Juju):
    """One restart for the fixed override and new JSON: Trino reads the JSON only at start."""
    assert node.pod is not None
    started = time.monotonic()
    juju.config(
        "trino",
        **{
            "config-overrides": "query.max-run-time=43m\n",
            "resource-groups": groups(limited=0),
            "session-properties": rules("19m"),
        },
    )
    assert json.loads((node.pod.etc / "session-property-config.json").read_text())[0][
        "sessionProperties"
    ] == {"query_max_execution_time": "19m"}

    state = become_active(juju, node)
    print(f"active again after {time.monotonic() - started:.0f}s")

    assert state.unit_status == testing.ActiveStatus()
    assert trino_pid(node.pod) != JVM["before"]
    alice = first_session(node, "alice")
    assert alice["query_max_execution_time"][0] == "19m"
    assert alice["query_max_run_time"][1].startswith("43")
    held = submit(node, "SELECT 1", "slow-3")
    try:
        seen = wait_for(
            "a query of the group of none queued",
            lambda: states(node, ("slow-3",)).get("slow-3"),
            timeout=30,
            poll=1,
        )
        assert seen == "QUEUED"
    finally:
        cancel(held)
