"""Readiness within seconds: Pebble's check tells the charm, not update-status.

The charm's check (`core.plan.ready_check_command`) runs the image's health check
and sends a Pebble custom notice when the answer changes. These tests run a real
Trino under a real Pebble, read the notices the way Juju does and deliver them as
`pebble-custom-notice` hooks: no update-status hook is ever run here.
"""

from __future__ import annotations

import dataclasses
import time

import ops
import pytest
from juju import Juju, Unit
from netlab import inside
from ops import testing
from test_single_node import boot

import workload
from core.plan import CHECK, pebble_layer

READY_WITHIN = 5.0  # seconds from Trino ready to the unit saying active


@dataclasses.dataclass
class Watch:
    """When Trino said it was ready, and when the charm said active after it."""

    ready_at: float | None = None
    active_at: float | None = None
    statuses: list[ops.StatusBase] = dataclasses.field(default_factory=list)


def watch_until_active(juju: Juju, unit: Unit, timeout: float = 240) -> Watch:
    """Poll Trino (as a user would) and deliver Pebble's notices, as Juju does, until active."""
    assert unit.pod is not None
    watch = Watch()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watch.ready_at is None:
            with inside(unit.pod.netns):
                info = workload.probe(timeout=1)
            if info is not None and not info.starting:
                watch.ready_at = time.monotonic()
        for state in juju.deliver_notices(unit):
            watch.statuses.append(state.unit_status)
            if isinstance(state.unit_status, testing.ActiveStatus):
                watch.active_at = time.monotonic()
                return watch
        time.sleep(0.2)
    pytest.fail(f"{unit.name} not active after {timeout}s; statuses: {watch.statuses}")


def notice_keys(unit: Unit) -> list[str]:
    assert unit.state is not None
    return [notice.key for notice in unit.state.get_container("trino").notices]


@pytest.fixture(scope="module")
def node(juju: Juju, pods) -> Unit:
    app = juju.deploy("trino", [pods("trino", 0)])
    return app.units[0]


def test_a_starting_node_says_active_within_seconds_of_trino_ready(node: Unit, juju: Juju):
    boot(juju, node)
    assert node.state is not None
    assert not isinstance(node.state.unit_status, testing.ActiveStatus), "Trino takes a while"

    watch = watch_until_active(juju, node)

    assert watch.ready_at is not None and watch.active_at is not None
    took = watch.active_at - watch.ready_at
    print(f"start: Trino ready -> unit active in {took:.1f}s")
    assert took <= READY_WITHIN, f"active {took:.1f}s after Trino was ready"
    assert notice_keys(node) == ["trino-k8s.charm/ready"]
    assert node.state is not None
    # Pebble's own user (root) sent it: every Juju 3.6 delivers such notices.
    assert node.state.get_container("trino").notices[0].user_id == 0
    assert [event for unit, event in juju.hooks if event == "update_status"] == []


def test_a_restart_is_seen_going_down_and_coming_back_with_the_lock_released(
    node: Unit, juju: Juju
):
    first = len(juju.hooks)
    result = juju.action(node, "add-catalog", {"name": "tpch", "connector": "tpch"})
    assert not isinstance(result, testing.ActionFailed), result
    assert node.state is not None
    peers = node.state.get_relations("trino-peers")[0]
    assert peers.local_unit_data["restart_request"] == "true"  # holds the lock until it serves

    watch = watch_until_active(juju, node)

    assert watch.ready_at is not None and watch.active_at is not None
    took = watch.active_at - watch.ready_at
    print(f"restart: Trino ready -> unit active in {took:.1f}s; statuses {watch.statuses}")
    assert took <= READY_WITHIN, f"active {took:.1f}s after Trino was ready"
    # Pebble's check saw Trino go away, then come back: two notices, two hooks.
    assert len(watch.statuses) == 2
    assert isinstance(watch.statuses[0], testing.WaitingStatus)
    assert watch.statuses[0].message.startswith("Trino is starting")
    peers = node.state.get_relations("trino-peers")[0]
    assert peers.local_unit_data["restart_request"] == "false"  # the lock moved on
    hooks = [event for unit, event in juju.hooks[first:]]
    assert hooks == ["trino_pebble_custom_notice"] * 2, hooks
    assert [event for unit, event in juju.hooks if event == "update_status"] == []


def test_pebble_keeps_the_check_as_the_charm_wrote_it(node: Unit):
    """Pebble writes durations back in its own form: the charm's must match, or every
    hook would see a changed check and add the layer again."""
    assert node.pod is not None
    client = ops.pebble.Client(socket_path=node.pod.socket)
    running = client.get_plan().checks[CHECK].to_dict()
    assert running == ops.pebble.Layer(pebble_layer()).checks[CHECK].to_dict()  # type: ignore[arg-type]
