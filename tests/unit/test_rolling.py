"""Rolling restarts: the lock, draining, failures, scale-down and the restart action."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import ops
import pytest
from conftest import FakeTrino, PebbleCalls, properties, read_files
from ops import testing
from ops._private.harness import _TestingPebbleClient

import restarts
import workload
from core import rolling

TPCH = "tiny: {connector: tpch}"


class TestTheLock:
    def test_the_holder_keeps_the_lock_while_it_asks(self):
        assert rolling.next_grant("t/2", ["t/1", "t/2"]) == "t/2"

    def test_the_lock_goes_in_unit_order(self):
        assert rolling.next_grant("", ["t/10", "t/2", "t/9"]) == "t/2"
        assert rolling.next_grant("t/3", ["t/10", "t/9"]) == "t/9"
        assert rolling.next_grant("t/3", []) == ""

    def test_turn_messages_say_whom_a_unit_waits_for(self):
        assert rolling.turn("t/1", "t/1").may_restart
        assert not rolling.turn("t/1", "").may_restart
        assert "waiting for t/0" in rolling.turn("t/1", "t/0").message
        paused = rolling.turn("t/1", "t/0", failed=True)
        assert not paused.may_restart
        assert "paused at t/0, which failed" in paused.message

    def test_drained_restarts_get_twice_the_grace_period(self):
        assert rolling.restart_deadline(100.0, drained=False, grace_seconds=120) == 400.0
        assert rolling.restart_deadline(100.0, drained=True, grace_seconds=120) == 640.0
        assert rolling.termination_grace_seconds(120) == 270


def peers_with(*units: int, **app: object) -> testing.PeerRelation:
    return testing.PeerRelation(
        "trino-peers",
        peers_data={unit: {} for unit in units},
        local_app_data={key: json.dumps(value) for key, value in app.items()},
    )


@pytest.fixture
def serving(ctx, container, trino, pebble_calls) -> testing.State:
    """Unit 0 of three, leader, Trino up on its first files."""
    state = ctx.run(
        ctx.on.pebble_ready(container),
        testing.State(leader=True, containers={container}, relations={peers_with(1, 2)}),
    )
    pebble_calls.replans = 0
    return state


def with_config(state: testing.State, **config: str) -> testing.State:
    return dataclasses.replace(state, config={**state.config, **config})


def unit_data(state: testing.State) -> dict[str, object]:
    relation = state.get_relations("trino-peers")[0]
    return {
        key: json.loads(value)
        for key, value in relation.local_unit_data.items()
        if key.startswith("restart_")  # Juju's own keys (ingress-address...) are not JSON
    }


def app_data(state: testing.State) -> dict[str, object]:
    relation = state.get_relations("trino-peers")[0]
    return {key: json.loads(value) for key, value in relation.local_app_data.items()}


def set_peers(state: testing.State, relation: testing.PeerRelation) -> testing.State:
    old = state.get_relations("trino-peers")[0]
    others = {r for r in state.relations if r.id != old.id}
    return dataclasses.replace(
        state, relations={*others, dataclasses.replace(relation, id=old.id)}
    )


class TestAUnitWaitsItsTurn:
    def test_a_change_while_another_unit_holds_the_lock_waits_and_writes_nothing(
        self, ctx, serving, etc, pebble_calls
    ):
        before = read_files(etc)
        relation = serving.get_relations("trino-peers")[0]
        held = dataclasses.replace(
            relation,
            local_app_data={**relation.local_app_data, "restart_granted": '"trino-k8s/2"'},
            peers_data={1: {}, 2: {"restart_request": "true"}},
        )

        state = ctx.run(
            ctx.on.config_changed(),
            with_config(set_peers(serving, held), **{"log-level": "debug"}),
        )

        assert read_files(etc) == before  # the last good files stay
        assert pebble_calls.restarts == []
        assert unit_data(state)["restart_request"] is True
        assert app_data(state)["restart_granted"] == "trino-k8s/2"
        assert state.unit_status == testing.ActiveStatus(
            "restart queued: waiting for trino-k8s/2 to finish its restart"
        )

    def test_the_leader_takes_a_free_lock_and_restarts_once(
        self, ctx, serving, etc, pebble_calls, trino: FakeTrino
    ):
        trino.info = None  # restarting: Trino does not answer yet

        state = ctx.run(ctx.on.config_changed(), with_config(serving, **{"log-level": "debug"}))

        assert properties(read_files(etc)["log.properties"]) == {"io.trino": "DEBUG"}
        assert pebble_calls.restarts == [("trino",)]
        assert app_data(state)["restart_granted"] == "trino-k8s/0"
        assert unit_data(state)["restart_request"] is True  # until Trino serves again

    def test_the_holder_hands_the_lock_on_once_trino_serves(
        self, ctx, serving, pebble_calls, trino: FakeTrino
    ):
        trino.info = None
        restarted = ctx.run(
            ctx.on.config_changed(), with_config(serving, **{"log-level": "debug"})
        )
        relation = restarted.get_relations("trino-peers")[0]
        waiting = dataclasses.replace(relation, peers_data={1: {"restart_request": "true"}, 2: {}})
        trino.info = workload.TrinoInfo(starting=False, version="483")

        state = ctx.run(ctx.on.update_status(), set_peers(restarted, waiting))

        assert unit_data(state)["restart_request"] is False
        assert app_data(state)["restart_granted"] == "trino-k8s/1"
        assert pebble_calls.restarts == [("trino",)]  # no second restart
        assert state.unit_status == testing.ActiveStatus()

    def test_the_ready_notice_hands_the_lock_on_without_update_status(
        self, ctx, serving, pebble_calls, trino: FakeTrino
    ):
        trino.info = None
        restarted = ctx.run(
            ctx.on.config_changed(), with_config(serving, **{"log-level": "debug"})
        )
        assert restarted.unit_status == testing.WaitingStatus(
            "Trino is starting (not answering on port 8080 yet)"
        )
        relation = restarted.get_relations("trino-peers")[0]
        waiting = dataclasses.replace(relation, peers_data={1: {"restart_request": "true"}, 2: {}})
        trino.info = workload.TrinoInfo(starting=False, version="483")
        # What Pebble's check sends the moment the health check first passes.
        ready = testing.Notice("trino-k8s.charm/ready")
        container = dataclasses.replace(restarted.get_container("trino"), notices=[ready])
        state_in = set_peers(dataclasses.replace(restarted, containers={container}), waiting)

        state = ctx.run(ctx.on.pebble_custom_notice(container, ready), state_in)

        assert unit_data(state)["restart_request"] is False
        assert app_data(state)["restart_granted"] == "trino-k8s/1"
        assert pebble_calls.restarts == [("trino",)]
        assert state.unit_status == testing.ActiveStatus()

    def test_a_restart_that_never_serves_stops_the_roll_and_says_why(
        self, ctx, serving, trino: FakeTrino, monkeypatch
    ):
        trino.info = None
        restarted = ctx.run(
            ctx.on.config_changed(), with_config(serving, **{"log-level": "debug"})
        )
        monkeypatch.setattr(rolling, "START_TIMEOUT", -1.0)  # time is up
        log = (
            "2026-11-26T12:00:00Z INFO main io.trino.server.Server Starting\n"
            "2026-11-26T12:00:01Z ERROR main io.trino.server.Server Configuration property "
            "'foo' was not used\n"
        )
        container = dataclasses.replace(
            restarted.get_container("trino"),
            execs={testing.Exec(["/charm/bin/pebble", "logs", "trino"], stdout=log)},
        )
        relation = restarted.get_relations("trino-peers")[0]
        waiting = dataclasses.replace(relation, peers_data={1: {"restart_request": "true"}, 2: {}})

        state = ctx.run(
            ctx.on.update_status(),
            dataclasses.replace(set_peers(restarted, waiting), containers={container}),
        )

        assert state.unit_status.name == "blocked"
        message = state.unit_status.message
        assert message.startswith("restart failed: Trino did not serve again in time")
        assert "Configuration property 'foo' was not used" in message
        assert "juju run trino-k8s/leader restart" in message
        # The lock stays here: the next unit does not go.
        assert app_data(state)["restart_granted"] == "trino-k8s/0"
        assert unit_data(state)["restart_failed"]

    def test_others_see_that_the_roll_is_paused(self, ctx, serving, etc):
        relation = serving.get_relations("trino-peers")[0]
        failed = dataclasses.replace(
            relation,
            local_app_data={**relation.local_app_data, "restart_granted": '"trino-k8s/1"'},
            peers_data={
                1: {"restart_request": "true", "restart_failed": '"Trino keeps exiting"'},
                2: {},
            },
        )

        state = ctx.run(
            ctx.on.config_changed(),
            with_config(set_peers(serving, failed), **{"log-level": "warn"}),
        )

        assert state.unit_status == testing.ActiveStatus(
            "restart queued: the roll is paused at trino-k8s/1, which failed"
        )

    def test_a_unit_alone_restarts_without_asking(self, ctx, container, trino, pebble_calls):
        state = ctx.run(
            ctx.on.pebble_ready(container),
            testing.State(containers={container}, leader=True, relations={peers_with()}),
        )

        after = ctx.run(ctx.on.config_changed(), with_config(state, **{"log-level": "warn"}))

        assert pebble_calls.restarts == [("trino",)]
        # It keeps its request until Trino serves again, so a failed restart is noticed.
        assert unit_data(after).get("restart_request") is True
        served = ctx.run(ctx.on.update_status(), after)
        assert unit_data(served).get("restart_request", False) is False
        assert served.unit_status == testing.ActiveStatus()

    def test_a_unit_alone_whose_restart_fails_says_so_and_keeps_saying_it(
        self, ctx, container, trino, pebble_calls, monkeypatch
    ):
        state = ctx.run(
            ctx.on.pebble_ready(container),
            testing.State(containers={container}, leader=True, relations={peers_with()}),
        )
        after = ctx.run(ctx.on.config_changed(), with_config(state, **{"log-level": "warn"}))
        log = "2026-11-29T22:05:01Z ERROR main io.trino.server.Server Catalog 'bad' failed\n"
        crashed = dataclasses.replace(
            after.get_container("trino"),
            execs={testing.Exec(["/charm/bin/pebble", "logs", "trino"], stdout=log)},
        )
        trino.info = None
        # Pebble's back-off between two crashes (the testing Pebble has no such state).
        monkeypatch.setattr(workload.Workload, "service_status", lambda self: "backoff")
        monkeypatch.setattr(workload.Workload, "is_running", lambda self: False)
        failed = ctx.run(ctx.on.update_status(), dataclasses.replace(after, containers={crashed}))
        assert isinstance(failed.unit_status, testing.BlockedStatus)
        assert "Catalog 'bad' failed" in failed.unit_status.message
        assert pebble_calls.replans == 1, "Pebble retries by itself: no replan from the charm"
        # Between two crashes Pebble runs Trino again: the status stays blocked.
        monkeypatch.setattr(workload.Workload, "service_status", lambda self: "active")
        monkeypatch.setattr(workload.Workload, "is_running", lambda self: True)
        again = ctx.run(ctx.on.update_status(), failed)
        assert isinstance(again.unit_status, testing.BlockedStatus)
        assert "restart failed" in again.unit_status.message


class TestDraining:
    @pytest.fixture
    def drains(self, monkeypatch) -> list[str]:
        calls: list[str] = []

        def fake(user: str, *args: object, **kwargs: object) -> str | None:
            calls.append(user)
            return None

        monkeypatch.setattr(restarts, "drain", fake)
        return calls

    def worker(self, ctx, container, trino, kubernetes_calls) -> testing.State:
        secret = testing.Secret({"shared-secret": "c2hhcmVk", "catalog-credentials": "{}"})
        relation = testing.Relation(
            "trino-worker",
            remote_app_name="trino",
            remote_app_data={
                "discovery-uri": json.dumps("http://trino-0.trino-endpoints.m.svc:8080"),
                "environment": json.dumps("m"),
                "catalogs": json.dumps({}),
                "settings": json.dumps({}),
                "secret-id": json.dumps(secret.id),
            },
        )
        return ctx.run(
            ctx.on.pebble_ready(container),
            testing.State(
                containers={container},
                relations={relation, peers_with(1)},
                secrets={secret},
                config={"charm-function": "worker"},
                leader=True,
            ),
        )

    def test_a_worker_drains_instead_of_restarting(
        self, ctx, container, etc, trino, pebble_calls: PebbleCalls, drains, kubernetes_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)

        after = ctx.run(ctx.on.config_changed(), with_config(state, **{"log-level": "debug"}))

        assert drains == ["trino-k8s-charm"]
        assert pebble_calls.restarts == []  # Trino exits by itself; Pebble starts it again
        assert properties(read_files(etc)["log.properties"]) == {"io.trino": "DEBUG"}
        assert after.unit_status == testing.MaintenanceStatus(
            "draining: running tasks finish (up to 2 x 2m), then Trino restarts"
        )

    def test_a_worker_that_cannot_drain_restarts_anyway(
        self, ctx, container, trino, pebble_calls, monkeypatch, kubernetes_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)
        monkeypatch.setattr(restarts, "drain", lambda *a, **k: "Trino refused to drain (HTTP 403)")

        ctx.run(ctx.on.config_changed(), with_config(state, **{"log-level": "debug"}))

        assert pebble_calls.restarts == [("trino",)]

    def test_a_worker_still_draining_is_not_done(
        self, ctx, container, trino: FakeTrino, drains, kubernetes_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)
        drained = ctx.run(ctx.on.config_changed(), with_config(state, **{"log-level": "debug"}))
        trino.info = workload.TrinoInfo(starting=False, version="483", state="SHUTTING_DOWN")

        after = ctx.run(ctx.on.update_status(), drained)

        assert unit_data(after)["restart_request"] is True
        assert after.unit_status.name == "maintenance"

    def test_a_drained_worker_between_exit_and_start_is_not_a_failure(
        self, ctx, container, trino: FakeTrino, drains, kubernetes_calls, monkeypatch
    ):
        """Seen live: Pebble says "backoff" for a moment after the drained Trino exits."""
        state = self.worker(ctx, container, trino, kubernetes_calls)
        drained = ctx.run(ctx.on.config_changed(), with_config(state, **{"log-level": "debug"}))
        trino.info = None
        monkeypatch.setattr(workload.Workload, "service_status", lambda self: "backoff")
        monkeypatch.setattr(workload.Workload, "is_running", lambda self: False)

        after = ctx.run(ctx.on.update_status(), drained)

        assert not isinstance(after.unit_status, testing.BlockedStatus), after.unit_status
        assert unit_data(after)["restart_request"] is True
        assert not unit_data(after).get("restart_failed")

    def test_other_units_restart_for_the_action_in_their_turn(
        self, ctx, container, trino, pebble_calls, drains, kubernetes_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)
        relation = state.get_relations("trino-peers")[0]
        asked = dataclasses.replace(
            relation, local_app_data={**relation.local_app_data, "restart_epoch": "1"}
        )
        non_leader = dataclasses.replace(set_peers(state, asked), leader=False)

        after = ctx.run(ctx.on.relation_changed(asked, remote_unit=1), non_leader)

        assert drains == [], after.unit_status
        assert after.unit_status.name == "active", after.unit_status
        assert unit_data(after)["restart_request"] is True
        granted = dataclasses.replace(
            asked, local_app_data={**asked.local_app_data, "restart_granted": '"trino-k8s/0"'}
        )
        ctx.run(ctx.on.relation_changed(granted, remote_unit=1), set_peers(after, granted))
        assert drains == ["trino-k8s-charm"]

    def test_stop_drains_a_worker_and_keeps_it_down(
        self, ctx, container, trino, drains, kubernetes_calls, pebble_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)

        after = ctx.run(ctx.on.stop(), state)

        # Pebble's stop is the SIGTERM the worker's script drains on (no stop-now flag):
        # the charm waits the kill-delay (2 x 2m + 25 s) and Pebble's margin.
        assert pebble_calls.stop_waits == [2 * 120 + 25 + 5]
        root = after.get_container("trino").get_filesystem(ctx)
        assert not (root / "tmp/trino-k8s-charm-stop-now").exists()
        assert after.get_container("trino").service_statuses["trino"] == (
            ops.pebble.ServiceStatus.INACTIVE
        )
        assert drains == []  # the script sends the drain request, with its 0600 credentials

    @pytest.mark.parametrize(
        "gone",
        [
            ops.pebble.ConnectionError("Pebble's socket is gone"),
            ops.pebble.APIError({}, 500, "Internal Server Error", "daemon is stopping"),
        ],
    )
    def test_stop_does_not_error_when_pebble_goes_away_under_it(
        self, ctx, container, trino, kubernetes_calls, monkeypatch, gone
    ):
        """Pod deletion: Pebble stops its services on SIGTERM, then closes its API."""
        state = self.worker(ctx, container, trino, kubernetes_calls)

        def stopped_under_us(self, services, timeout=30.0, delay=0.1):
            raise gone

        monkeypatch.setattr(_TestingPebbleClient, "stop_services", stopped_under_us)

        after = ctx.run(ctx.on.stop(), state)

        assert after.unit_status.name != "error"

    def test_stop_does_not_error_when_pebble_is_already_gone(
        self, ctx, container, trino, kubernetes_calls, monkeypatch
    ):
        """Pebble answered the charm's first call, and was gone by the next."""
        state = self.worker(ctx, container, trino, kubernetes_calls)

        def gone(self, names=None):
            raise ops.pebble.ConnectionError("Pebble's socket is gone")

        monkeypatch.setattr(_TestingPebbleClient, "get_services", gone)

        after = ctx.run(ctx.on.stop(), state)  # no exception

        assert after.unit_status.name != "error"

    def test_a_drain_that_outlasts_the_wait_is_left_to_pebble(
        self, ctx, container, trino, kubernetes_calls, monkeypatch
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)

        def still_draining(self, services, timeout=30.0, delay=0.1):
            raise ops.pebble.TimeoutError("timed out waiting for change 7")

        monkeypatch.setattr(_TestingPebbleClient, "stop_services", still_draining)

        after = ctx.run(ctx.on.stop(), state)

        assert after.unit_status.name != "error"

    def test_a_worker_runs_under_the_script_that_drains_on_sigterm(
        self, ctx, container, etc, trino, kubernetes_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)

        service = state.get_container("trino").plan.services["trino"]
        assert service.command == "/bin/bash /etc/trino/run-worker.sh"
        # 2 x 2m + 25 s, as Pebble writes it back: 5 s before the kubelet's SIGKILL.
        assert service.kill_delay == "4m25s"
        assert kubernetes_calls[-1][3] == 2 * 120 + 30  # terminationGracePeriodSeconds
        files = read_files(etc)
        script = files["run-worker.sh"]
        assert "/usr/lib/trino/bin/launcher run --etc-dir /etc/trino &" in script
        assert "curl --config /etc/trino/drain.curl" in script
        assert "deadline=$((SECONDS + 263))" in script  # it kills Trino 2 s before Pebble would
        assert (etc / "run-worker.sh").stat().st_mode & 0o777 == 0o644
        request = files["drain.curl"]
        assert 'url = "http://localhost:8080/v1/info/state"' in request
        assert 'header = "X-Trino-User: trino-k8s-charm"' in request
        assert (etc / "drain.curl").stat().st_mode & 0o777 == 0o600

    def test_the_kill_delay_follows_the_grace_period(
        self, ctx, container, trino, drains, kubernetes_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)

        after = ctx.run(
            ctx.on.config_changed(), with_config(state, **{"graceful-shutdown-period": "5s"})
        )

        assert after.get_container("trino").plan.services["trino"].kill_delay == "35s"
        assert kubernetes_calls[-1][3] == 40

    def test_a_coordinator_runs_trino_directly(self, ctx, container, etc, trino):
        state = ctx.run(
            ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
        )

        service = state.get_container("trino").plan.services["trino"]
        assert service.command == "/usr/lib/trino/bin/launcher run --etc-dir /etc/trino"
        assert service.kill_delay == ""  # Pebble's default 5 s: it refuses to drain anyway
        assert not {"run-worker.sh", "drain.curl"} & set(read_files(etc))

    def test_a_new_drain_request_is_written_without_a_restart(
        self, ctx, container, etc, trino, pebble_calls, drains, kubernetes_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)
        (etc / "drain.curl").write_text('url = "http://old"\n')

        after = ctx.run(ctx.on.update_status(), state)

        assert 'url = "http://localhost:8080/v1/info/state"' in read_files(etc)["drain.curl"]
        assert pebble_calls.restarts == []
        assert drains == []
        assert after.unit_status == testing.ActiveStatus()

    def test_the_charms_own_restart_tells_the_script_not_to_drain(
        self, ctx, container, trino, pebble_calls, monkeypatch, kubernetes_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)
        monkeypatch.setattr(restarts, "drain", lambda *a, **k: "Trino refused to drain (HTTP 403)")

        after = ctx.run(ctx.on.config_changed(), with_config(state, **{"log-level": "debug"}))

        assert pebble_calls.restarts == [("trino",)]
        root = after.get_container("trino").get_filesystem(ctx)
        assert (root / "tmp/trino-k8s-charm-stop-now").exists()

    def test_a_worker_that_loses_its_coordinator_drains_before_it_stops(
        self, ctx, container, trino, pebble_calls, drains, kubernetes_calls
    ):
        """`juju remove-relation`, or `juju remove-unit` (relation-broken comes before stop)."""
        state = self.worker(ctx, container, trino, kubernetes_calls)
        relation = state.get_relations("trino-worker")[0]

        after = ctx.run(ctx.on.relation_broken(relation), state)

        assert pebble_calls.stops == []  # never ops' Container.stop, which waits 30 s
        assert pebble_calls.stop_waits == [2 * 120 + 25 + 5]
        root = after.get_container("trino").get_filesystem(ctx)
        assert not (root / "tmp/trino-k8s-charm-stop-now").exists()  # the script drains
        assert after.get_container("trino").service_statuses["trino"] == (
            ops.pebble.ServiceStatus.INACTIVE
        )
        assert after.unit_status.name == "waiting"

    def test_a_worker_left_without_its_coordinator_stays_stopped(
        self, ctx, container, trino, pebble_calls, drains, kubernetes_calls
    ):
        state = self.worker(ctx, container, trino, kubernetes_calls)
        relation = state.get_relations("trino-worker")[0]
        broken = ctx.run(ctx.on.relation_broken(relation), state)
        alone = dataclasses.replace(broken, relations={broken.get_relations("trino-peers")[0]})

        ctx.run(ctx.on.update_status(), alone)

        assert pebble_calls.stop_waits == [2 * 120 + 25 + 5]  # one drain, not one a hook
        assert pebble_calls.replans == 1  # the first start only

    def test_stop_on_a_coordinator_does_not_drain(self, ctx, container, trino, drains):
        state = ctx.run(
            ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
        )

        ctx.run(ctx.on.stop(), state)

        assert drains == []


class FakeTrinoApi(http.server.BaseHTTPRequestHandler):
    """Trino's /v1/info/state as a worker answers it."""

    requests: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []
    status = 200
    delay = 0.0

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append((self.command, self.path, dict(self.headers), body))
        time.sleep(self.delay)
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def api() -> Iterator[str]:
    FakeTrinoApi.requests, FakeTrinoApi.status, FakeTrinoApi.delay = [], 200, 0.0
    server = http.server.HTTPServer(("127.0.0.1", 0), FakeTrinoApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


class TestTheDrainCall:
    def test_it_puts_shutting_down_as_the_charm_user(self, api):
        assert workload.drain("trino-k8s-charm", api) is None

        [(method, path, headers, body)] = FakeTrinoApi.requests
        assert (method, path, body) == ("PUT", "/v1/info/state", b'"SHUTTING_DOWN"')
        assert headers["X-Trino-User"] == "trino-k8s-charm"
        assert headers["Content-Type"] == "application/json"

    def test_a_refusal_is_reported(self, api):
        FakeTrinoApi.status = 403

        assert workload.drain("trino-k8s-charm", api) == "Trino refused to drain (HTTP 403)"

    def test_a_silent_trino_times_out(self, api):
        FakeTrinoApi.delay = 1.0

        problem = workload.drain("trino-k8s-charm", api, timeout=0.2)

        assert problem is not None
        assert problem.startswith("Trino did not answer the drain request")

    def test_nothing_listening_is_reported(self):
        problem = workload.drain("trino-k8s-charm", "http://127.0.0.1:9")
        assert problem is not None and "did not answer" in problem


class TestRestartAction:
    def test_the_leader_restarts_first_and_queues_the_others(
        self, ctx, serving, pebble_calls, trino: FakeTrino
    ):
        trino.info = None

        state = ctx.run(ctx.on.action("restart"), serving)

        assert pebble_calls.restarts == [("trino",)]
        assert json.loads(ctx.action_results["units"]) == {
            "trino-k8s/0": "restarting now",
            "trino-k8s/1": "queued",
            "trino-k8s/2": "queued",
        }
        assert app_data(state)["restart_epoch"] == 1
        assert unit_data(state)["restart_epoch"] == 1

    def test_a_unit_alone_restarts_at_once(self, ctx, container, trino, pebble_calls):
        state = ctx.run(
            ctx.on.pebble_ready(container),
            testing.State(leader=True, containers={container}, relations={peers_with()}),
        )

        ctx.run(ctx.on.action("restart"), state)

        assert pebble_calls.restarts == [("trino",)]
        assert json.loads(ctx.action_results["units"]) == {"trino-k8s/0": "restarted"}

    def test_elsewhere_than_the_leader_it_names_the_leader(self, ctx, serving):
        relation = serving.get_relations("trino-peers")[0]
        state = dataclasses.replace(serving, leader=False)

        with pytest.raises(testing.ActionFailed, match="run it on the leader, trino-k8s/0"):
            ctx.run(ctx.on.action("restart"), set_peers(state, relation))


def test_a_unit_that_crashes_on_its_new_files_keeps_the_lock(ctx, serving, trino, monkeypatch):
    """A crash loop is a failed restart: the roll must not pass the bad files on."""
    trino.info = None
    restarted = ctx.run(ctx.on.config_changed(), with_config(serving, **{"log-level": "debug"}))
    crashed = dataclasses.replace(
        restarted.get_container("trino"),
        service_statuses={"trino": ops.pebble.ServiceStatus.ERROR},
    )
    relation = restarted.get_relations("trino-peers")[0]
    waiting = dataclasses.replace(relation, peers_data={1: {"restart_request": "true"}, 2: {}})
    monkeypatch.setattr(rolling, "START_TIMEOUT", -1.0)

    state = ctx.run(
        ctx.on.pebble_check_failed(crashed, testing.CheckInfo("trino-ready")),
        dataclasses.replace(set_peers(restarted, waiting), containers={crashed}),
    )

    assert app_data(state)["restart_granted"] == "trino-k8s/0"
    assert unit_data(state)["restart_request"] is True
    assert unit_data(state)["restart_failed"]
    assert state.unit_status.name == "blocked"
