"""The charm as Juju drives it: plan, files, statuses, restarts, actions."""

from __future__ import annotations

import dataclasses
import pathlib

import ops
import pytest
from conftest import FakeTrino, properties, read_files
from ops import testing

import workload

EXPECTED_FILES = {
    "node.properties",
    "jvm.config",
    "config.properties",
    "log.properties",
    "access-control.properties",
    "rules.json",
}


def mtimes(etc: pathlib.Path) -> dict[str, int]:
    return {str(path): path.stat().st_mtime_ns for path in etc.rglob("*") if path.is_file()}


@pytest.fixture
def running(ctx, container, trino, pebble_calls) -> testing.State:
    """A unit after pebble-ready: files written, Trino started and serving."""
    state = ctx.run(
        ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
    )
    pebble_calls.replans = 0
    return state


def test_pebble_ready_sets_up_the_service_and_its_check(ctx, container, trino, pebble_calls):
    state = ctx.run(
        ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
    )

    plan = state.get_container("trino").plan
    service = plan.services["trino"]
    assert service.command == "/usr/lib/trino/bin/launcher run --etc-dir /etc/trino"
    assert (service.user, service.group, service.startup) == ("trino", "trino", "enabled")
    assert service.environment == {}
    check = plan.checks["trino-ready"]
    assert check.level == ops.pebble.CheckLevel.READY
    assert check.exec is not None
    # The image's health check, which also tells the charm (a Pebble notice) on a change.
    assert "/usr/lib/trino/bin/health-check" in check.exec["command"]
    assert "/charm/bin/pebble notify trino-k8s.charm/" in check.exec["command"]
    assert check.exec["environment"] == {"PEBBLE_SOCKET": "/charm/container/pebble.socket"}
    assert check.period == "2s"
    assert (
        state.get_container("trino").service_statuses["trino"] == ops.pebble.ServiceStatus.ACTIVE
    )
    assert pebble_calls.replans == 1
    assert state.unit_status == testing.ActiveStatus()
    assert state.opened_ports == {testing.TCPPort(8080)}
    assert state.workload_version == "483"


def test_pebble_ready_writes_every_file_trino_reads(ctx, container, etc, trino):
    ctx.run(ctx.on.pebble_ready(container), testing.State(leader=True, containers={container}))

    files = read_files(etc)
    assert set(files) == EXPECTED_FILES
    for name in files:
        # config.properties holds the cluster's shared secret.
        mode = 0o600 if name == "config.properties" else 0o644
        assert (etc / name).stat().st_mode & 0o777 == mode
    node = properties(files["node.properties"])
    assert node == {
        "node.environment": node["node.environment"],
        "node.id": "trino-k8s-0",
        "node.data-dir": "/data/trino",
    }
    config = properties(files["config.properties"])
    # 512 random bytes, base64, made once by the leader and kept in a Juju secret.
    assert len(config.pop("internal-communication.shared-secret")) == 684
    assert config == {
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true",
        "http-server.http.port": "8080",
        "discovery.uri": "http://localhost:8080",
        "shutdown.grace-period": "2m",
        # JVM heap and CPU on /metrics, for the COS dashboard and alerts.
        "metrics.jmx-object-names": "java.lang:type=Memory|java.lang:type=OperatingSystem",
    }
    # No memory limit: a bounded heap, never a share of the whole node's memory.
    assert "-Xmx2048m" in files["jvm.config"].splitlines()
    assert "RAMPercentage" not in files["jvm.config"]
    assert properties(files["log.properties"]) == {"io.trino": "INFO"}
    assert properties(files["access-control.properties"]) == {
        "access-control.name": "file",
        "security.config-file": "/etc/trino/rules.json",
        "security.refresh-period": "5s",
    }


def test_config_options_reach_the_files(ctx, container, etc, trino):
    config = {
        "log-level": "warn",
        "heap-percentage": 70,
        "workload-memory-limit": "8Gi",
        "additional-jvm-options": "-XX:ReservedCodeCacheSize=1G -Duser.timezone=UTC",
        "query-max-memory": "50GB",
        "query-max-memory-per-node": "25%",
        "graceful-shutdown-period": "5m",
    }
    ctx.run(
        ctx.on.config_changed(), testing.State(leader=True, containers={container}, config=config)
    )

    files = read_files(etc)
    jvm_lines = files["jvm.config"].splitlines()
    assert "-XX:MaxRAMPercentage=70" in jvm_lines
    assert "-XX:ReservedCodeCacheSize=1G" in jvm_lines
    assert "-XX:ReservedCodeCacheSize=512M" not in jvm_lines
    assert jvm_lines[-1] == "-Duser.timezone=UTC"
    assert properties(files["log.properties"]) == {"io.trino": "WARN"}
    settings = properties(files["config.properties"])
    assert settings["query.max-memory"] == "50GB"
    assert settings["query.max-memory-per-node"] == "25%"
    assert settings["shutdown.grace-period"] == "5m"


def test_a_stale_catalog_file_is_removed(ctx, container, etc, trino):
    (etc / "catalog").mkdir()
    (etc / "catalog" / "tpch.properties").write_text("connector.name=tpch\n")

    ctx.run(ctx.on.pebble_ready(container), testing.State(leader=True, containers={container}))

    assert not (etc / "catalog" / "tpch.properties").exists()


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("all", testing.ActiveStatus()),
        ("coordinator", testing.ActiveStatus("coordinator: queries run once workers join")),
    ],
)
def test_serving_roles_are_active(ctx, container, etc, trino, role, expected):
    state = ctx.run(
        ctx.on.config_changed(),
        testing.State(leader=True, containers={container}, config={"charm-function": role}),
    )

    assert state.unit_status == expected
    include = properties(read_files(etc)["config.properties"])[
        "node-scheduler.include-coordinator"
    ]
    assert include == ("true" if role == "all" else "false")


def test_a_worker_without_coordinator_waits_and_runs_nothing(ctx, container, etc, trino):
    state = ctx.run(
        ctx.on.config_changed(),
        testing.State(containers={container}, config={"charm-function": "worker"}),
    )

    assert isinstance(state.unit_status, testing.WaitingStatus)
    assert "coordinator" in state.unit_status.message
    assert read_files(etc) == {}
    assert "trino" not in state.get_container("trino").plan.services


def test_an_unknown_role_blocks_with_the_option_name(ctx, container, etc, trino):
    state = ctx.run(
        ctx.on.config_changed(),
        testing.State(leader=True, containers={container}, config={"charm-function": "leader"}),
    )

    assert state.unit_status == testing.BlockedStatus(
        "charm-function: 'leader' is not a role; use all, coordinator or worker"
    )
    assert read_files(etc) == {}


def test_turning_a_running_node_into_a_worker_stops_it(ctx, running, pebble_calls):
    state = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(running, config={"charm-function": "worker"}),
    )

    # Pebble stops it as a worker is stopped: its running tasks may finish first.
    assert pebble_calls.stop_waits == [2 * 120 + 25 + 5]
    assert (
        state.get_container("trino").service_statuses["trino"] == ops.pebble.ServiceStatus.INACTIVE
    )
    assert isinstance(state.unit_status, testing.WaitingStatus)


def test_no_op_hook_writes_nothing_and_restarts_nothing(ctx, running, etc, pebble_calls):
    before = mtimes(etc)

    state = ctx.run(ctx.on.update_status(), running)

    assert mtimes(etc) == before
    assert pebble_calls.restarts == []
    assert pebble_calls.replans == 0
    assert state.get_container("trino").layers == running.get_container("trino").layers
    assert state.unit_status == testing.ActiveStatus()


def test_a_real_change_restarts_trino_once(ctx, running, etc, pebble_calls):
    before = read_files(etc)

    ctx.run(ctx.on.config_changed(), dataclasses.replace(running, config={"log-level": "debug"}))

    after = read_files(etc)
    assert properties(after["log.properties"]) == {"io.trino": "DEBUG"}
    assert {name for name in after if after[name] != before[name]} == {"log.properties"}
    assert pebble_calls.restarts == [("trino",)]


def test_a_tampered_file_is_rewritten(ctx, running, etc, pebble_calls):
    (etc / "jvm.config").write_text("-Xmx1m\n")

    ctx.run(ctx.on.update_status(), running)

    assert "-Xmx2048m" in (etc / "jvm.config").read_text().splitlines()
    assert pebble_calls.restarts == [("trino",)]


def test_refused_memory_settings_leave_the_running_files_untouched(
    ctx, running, etc, pebble_calls
):
    before, before_mtimes = read_files(etc), mtimes(etc)
    config = {"workload-memory-limit": "10Gi", "query-max-memory-per-node": "6GB"}

    state = ctx.run(ctx.on.config_changed(), dataclasses.replace(running, config=config))

    assert isinstance(state.unit_status, testing.BlockedStatus)
    message = state.unit_status.message
    assert message.startswith("query-max-memory-per-node: 6GB")
    assert "heap 8GB" in message
    assert read_files(etc) == before
    assert mtimes(etc) == before_mtimes
    assert pebble_calls.restarts == []
    assert (
        state.get_container("trino").service_statuses["trino"] == ops.pebble.ServiceStatus.ACTIVE
    )


def test_several_bad_options_are_counted_in_the_status(ctx, container, trino):
    config = {"log-level": "loud", "heap-percentage": 10}

    state = ctx.run(
        ctx.on.config_changed(), testing.State(leader=True, containers={container}, config=config)
    )

    assert state.unit_status == testing.BlockedStatus(
        "log-level: 'loud' is not a level; use debug, info, warn, error"
        " (+1 more in juju debug-log)"
    )


def test_waiting_for_the_container(ctx, trino):
    container = testing.Container("trino", can_connect=False)

    state = ctx.run(ctx.on.config_changed(), testing.State(leader=True, containers={container}))

    assert state.unit_status == testing.WaitingStatus("waiting for the trino container to start")


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (workload.TrinoInfo(starting=True, version="483"), "Trino is starting"),
        (None, "Trino is starting (not answering on port 8080 yet)"),
    ],
)
def test_waiting_while_trino_starts(ctx, container, trino: FakeTrino, info, message):
    trino.info = info

    state = ctx.run(
        ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
    )

    assert state.unit_status == testing.WaitingStatus(message)


def test_the_check_recovering_turns_the_unit_active(ctx, running, trino: FakeTrino):
    trino.info = workload.TrinoInfo(starting=True, version="483")
    starting = ctx.run(ctx.on.update_status(), running)
    assert starting.unit_status == testing.WaitingStatus("Trino is starting")

    trino.info = workload.TrinoInfo(starting=False, version="483")
    container = starting.get_container("trino")
    check = next(iter(container.check_infos))
    state = ctx.run(ctx.on.pebble_check_recovered(container, check), starting)

    assert state.unit_status == testing.ActiveStatus()


def test_a_crashed_service_blocks_with_where_to_look(ctx, running, trino):
    container = running.get_container("trino")
    crashed = dataclasses.replace(
        container, service_statuses={"trino": ops.pebble.ServiceStatus.ERROR}
    )
    peers = testing.PeerRelation("trino-peers")
    # A hook the charm does not reconcile on still reports the crash.
    state = ctx.run(
        ctx.on.relation_created(peers),
        dataclasses.replace(running, containers={crashed}, relations={peers}),
    )

    assert isinstance(state.unit_status, testing.BlockedStatus)
    assert "Trino is error" in state.unit_status.message
    assert "pebble logs trino" in state.unit_status.message


def test_a_crashed_service_status_quotes_trinos_last_error(ctx, running, trino):
    log = "2026-11-29T22:00:30Z ERROR main io.trino.server.Server No factory for 'nope'\n"
    container = dataclasses.replace(
        running.get_container("trino"),
        service_statuses={"trino": ops.pebble.ServiceStatus.ERROR},
        execs={testing.Exec(["/charm/bin/pebble", "logs", "trino"], stdout=log)},
    )
    peers = testing.PeerRelation("trino-peers")
    state = ctx.run(
        ctx.on.relation_created(peers),
        dataclasses.replace(running, containers={container}, relations={peers}),
    )

    assert isinstance(state.unit_status, testing.BlockedStatus)
    assert "No factory for 'nope'" in state.unit_status.message


def exits_at_once(self: ops.Container, *names: str) -> None:
    """What Pebble answers when Trino exits within a second of its start (and retries it)."""
    # Pebble says "backoff" between its retries; ops names only active, inactive and error.
    self.pebble._service_status["trino"] = ops.pebble.ServiceStatus.ERROR  # type: ignore[attr-defined]
    change = ops.pebble.Change.from_dict(
        {
            "id": "4",
            "kind": "restart",
            "summary": 'Restart service "trino"',
            "status": "Error",
            "tasks": [],
            "ready": True,
            "err": 'cannot perform the following tasks:\n- Start service "trino" '
            "(service start attempt: exited quickly with code 1, will restart)",
            "spawn-time": "2026-11-29T22:09:20.239249Z",
            "ready-time": "2026-11-29T22:09:20.801792Z",
        }
    )
    raise ops.pebble.ChangeError(change.err or "", change)


@pytest.mark.parametrize("start", ["restart", "replan"])
def test_a_trino_that_exits_at_once_blocks_instead_of_failing_the_hook(
    ctx, container, etc, trino, monkeypatch, start
):
    # Seen live: `additional-jvm-options=-XX:+NoSuchFlagAtAll` made config-changed fail.
    state = testing.State(leader=True, containers={container})
    if start == "restart":
        state = ctx.run(ctx.on.pebble_ready(container), state)
    monkeypatch.setattr(ops.Container, start, exits_at_once)
    config = {"additional-jvm-options": "-XX:+NoSuchFlagAtAll"}

    state = ctx.run(ctx.on.config_changed(), dataclasses.replace(state, config=config))

    assert "-XX:+NoSuchFlagAtAll" in (etc / "jvm.config").read_text().splitlines()
    assert isinstance(state.unit_status, testing.BlockedStatus)
    assert "Pebble: error" in state.unit_status.message or "Trino is error" in (
        state.unit_status.message
    )
