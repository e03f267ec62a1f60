"""Pebble's check tells the charm at once when Trino becomes ready or stops being ready."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess

import ops
from conftest import FakeTrino, PebbleCalls
from ops import testing

import workload
from core import plan


def run_check(tmp_path: pathlib.Path, healthy: bool) -> tuple[int, list[str]]:
    """Run the check's command with the image's health check and Pebble faked."""
    health = tmp_path / "health-check"
    health.write_text(f"#!/bin/sh\nexit {0 if healthy else 1}\n")
    pebble = tmp_path / "pebble"
    pebble.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/notices\n')
    for script in (health, pebble):
        script.chmod(0o755)
    command = (
        plan.ready_check_command()
        .replace(plan.HEALTH_CHECK, str(health))
        .replace(plan.PEBBLE, str(pebble))
        .replace(plan.READY_STATE, str(tmp_path / "state"))
    )
    script = command.removeprefix("/bin/sh -c ")[1:-1]  # what sh runs, unquoted
    code = subprocess.run(["/bin/sh", "-c", script], check=False).returncode
    notices = tmp_path / "notices"
    return code, notices.read_text().splitlines() if notices.exists() else []


def test_the_check_sends_a_notice_only_when_readiness_changes(tmp_path):
    assert run_check(tmp_path, healthy=False) == (1, [])  # starting: nothing to say yet
    assert run_check(tmp_path, healthy=True) == (0, ["notify trino-k8s.charm/ready"])
    assert run_check(tmp_path, healthy=True) == (0, ["notify trino-k8s.charm/ready"])
    code, notices = run_check(tmp_path, healthy=False)
    assert (code, notices[-1]) == (1, "notify trino-k8s.charm/not-ready")
    code, notices = run_check(tmp_path, healthy=False)
    assert (code, len(notices)) == (1, 2)  # one notice per change, not per check
    code, notices = run_check(tmp_path, healthy=True)
    assert (code, notices[-1], len(notices)) == (0, "notify trino-k8s.charm/ready", 3)


def test_the_check_runs_as_pebbles_user_so_juju_delivers_its_notices():
    layer = plan.pebble_layer()
    check = layer["checks"]["trino-ready"]
    assert "user" not in check["exec"]
    assert check["exec"]["environment"] == {"PEBBLE_SOCKET": plan.PEBBLE_SOCKET}
    assert layer["services"]["trino"]["user"] == "trino"  # Trino itself stays unprivileged


def test_a_ready_notice_turns_the_unit_active(ctx, container, trino: FakeTrino):
    trino.info = workload.TrinoInfo(starting=True, version="483")
    starting = ctx.run(
        ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
    )
    assert starting.unit_status == testing.WaitingStatus("Trino is starting")

    trino.info = workload.TrinoInfo(starting=False, version="483")
    ready = testing.Notice(plan.NOTICE_READY)
    container = dataclasses.replace(starting.get_container("trino"), notices=[ready])
    state = ctx.run(
        ctx.on.pebble_custom_notice(container, ready),
        dataclasses.replace(starting, containers={container}),
    )

    assert state.unit_status == testing.ActiveStatus()


def test_a_not_ready_notice_shows_trino_starting(ctx, container, trino: FakeTrino):
    running = ctx.run(
        ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
    )
    assert running.unit_status == testing.ActiveStatus()

    trino.info = None  # Trino restarted by Pebble: not answering yet
    gone = testing.Notice(plan.NOTICE_NOT_READY)
    container = dataclasses.replace(running.get_container("trino"), notices=[gone])
    state = ctx.run(
        ctx.on.pebble_custom_notice(container, gone),
        dataclasses.replace(running, containers={container}),
    )

    assert state.unit_status == testing.WaitingStatus(
        "Trino is starting (not answering on port 8080 yet)"
    )


def test_a_new_check_definition_never_restarts_trino(
    ctx, container, trino: FakeTrino, pebble_calls: PebbleCalls
):
    """Upgrading from a charm with the old check changes the check alone: no roll."""
    running = ctx.run(
        ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
    )
    old_layer = plan.pebble_layer()
    old_layer["checks"]["trino-ready"] = {
        "override": "replace",
        "level": "ready",
        "period": "10s",
        "timeout": "5s",
        "threshold": 3,
        "exec": {"command": plan.HEALTH_CHECK, "user": "trino", "group": "trino"},
    }
    old = dataclasses.replace(
        running.get_container("trino"),
        layers={"trino": ops.pebble.Layer(old_layer)},  # type: ignore[arg-type]
    )
    pebble_calls.restarts.clear()

    state = ctx.run(ctx.on.upgrade_charm(), dataclasses.replace(running, containers={old}))

    check = state.get_container("trino").plan.checks["trino-ready"]
    assert check.exec is not None
    assert check.exec["command"] == plan.ready_check_command()
    assert pebble_calls.restarts == []
    assert state.unit_status == testing.ActiveStatus()
