"""The worker script (templates/run-worker.sh.j2) run for real: bash, curl, signals.

A small Python program plays Trino: it serves `PUT /v1/info/state` on loopback,
records what it was sent and its process group, and exits 0 a moment after it
accepted a drain, as a draining Trino worker does (or never, with `linger`). The
test sends SIGTERM to the script's whole process group, as Pebble does.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from core import rolling, shutdown
from core.render import render

FAKE_TRINO = r"""
import http.server, json, os, sys, threading
record, answer, linger = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "linger"
class State(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        with open(record, "a") as out:
            out.write(json.dumps({"body": body, **dict(self.headers)}) + "\n")
        self.send_response(answer)
        self.end_headers()
        if answer == 200 and not linger:  # drained: the tasks are done, Trino exits
            threading.Timer(1.0, lambda: os._exit(0)).start()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), State)
with open(record + ".port", "w") as out:
    out.write(json.dumps({"port": server.server_port, "group": os.getpgid(0)}))
server.serve_forever()
"""


class Worker:
    """The rendered script around the fake Trino, in a process group of its own."""

    def __init__(
        self,
        tmp_path: pathlib.Path,
        answer: int = 200,
        exit_code: int | None = None,
        linger: bool = False,
        drain_seconds: int = 30,
    ):
        self.dir = tmp_path
        self.record = tmp_path / "requests"
        self.config = tmp_path / "drain.curl"
        self.stop_now = tmp_path / "stop-now"
        program = tmp_path / "fake_trino.py"
        program.write_text(FAKE_TRINO)
        launcher = f"{sys.executable} {program} {self.record} {answer} {linger and 'linger'}"
        if exit_code is not None:
            launcher = f"sh -c 'exit {exit_code}'"
        script = tmp_path / "run-worker.sh"
        script.write_text(
            render(
                "run-worker.sh",
                launcher=launcher,
                drain_config=self.config,
                stop_now=self.stop_now,
                drain_seconds=drain_seconds,
            )
        )
        self.groups: list[int] = []  # the script's, then the fake Trino's
        self.process = subprocess.Popen(
            ["/bin/bash", str(script)],
            start_new_session=True,  # Pebble starts each service as a process group
            stderr=subprocess.PIPE,
            text=True,
        )
        self.groups.append(self.process.pid)

    def trino(self) -> dict:
        """Once the fake Trino listens: its port and process group."""
        port_file = self.record.with_suffix(".port")
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            assert time.monotonic() < deadline, "the fake Trino did not start"
            assert self.process.poll() is None, self.process.stderr.read()
            time.sleep(0.05)
        info = json.loads(port_file.read_text())
        self.groups.append(info["group"])
        files = shutdown.drain_request("trino-k8s-charm", f"http://127.0.0.1:{info['port']}")
        self.config.write_text(files[shutdown.DRAIN_CONFIG])
        return info

    def sigterm(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)

    def requests(self) -> list[dict]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def finish(self, timeout: float = 20) -> tuple[int, str]:
        try:
            _, err = self.process.communicate(timeout=timeout)
        finally:
            self.kill()
        return self.process.returncode, err

    def kill(self) -> None:
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


@pytest.fixture
def worker(tmp_path):
    made: list[Worker] = []

    def make(**kwargs) -> Worker:
        made.append(Worker(tmp_path, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.kill()
        each.process.communicate()


def test_sigterm_drains_and_the_script_exits_after_trino(worker):
    running = worker()
    assert running.trino()["group"] != running.process.pid, "Pebble's SIGTERM must miss Trino"

    running.sigterm()
    time.sleep(0.5)
    assert running.process.poll() is None, "the script waits for Trino to finish"
    code, err = running.finish()

    assert code == 0
    [request] = running.requests()
    assert request["body"] == '"SHUTTING_DOWN"'
    assert request["X-Trino-User"] == "trino-k8s-charm"
    assert request["Content-Type"] == "application/json"
    assert "draining" in err


def test_a_refused_drain_stops_trino_at_once(worker):
    refusing = worker(answer=400)  # a node that will not drain
    refusing.trino()

    refusing.sigterm()
    code, err = refusing.finish(timeout=10)

    assert code == 128 + signal.SIGTERM  # stopped by the script, not left running
    assert len(refusing.requests()) == 1
    assert "did not take the drain" in err


def test_the_charms_own_stop_does_not_drain(worker):
    stopping = worker()
    stopping.trino()
    stopping.stop_now.write_text("")

    stopping.sigterm()
    code, err = stopping.finish(timeout=10)

    assert code == 128 + signal.SIGTERM
    assert stopping.requests() == []
    assert not stopping.stop_now.exists(), "the next start must drain again"
    assert "from the charm" in err


def test_a_drain_that_outlasts_its_time_is_killed_before_pebbles_sigkill(worker):
    stuck = worker(linger=True, drain_seconds=2)  # tasks that never end
    stuck.trino()

    stuck.sigterm()
    started = time.monotonic()
    code, err = stuck.finish()

    assert code == 128 + signal.SIGKILL
    assert time.monotonic() - started < 10
    assert "did not stop in time" in err


def test_a_drain_from_the_roll_exits_0_for_pebble_to_restart(worker):
    """The roll's PUT (no signal): Trino exits 0, and so does the script."""
    rolled = worker()
    info = rolled.trino()
    curl = ["curl", "-sf", "-X", "PUT", "-d", '"SHUTTING_DOWN"']
    subprocess.run([*curl, f"http://127.0.0.1:{info['port']}/v1/info/state"], check=True)

    code, _ = rolled.finish()

    assert code == 0


@pytest.mark.parametrize("exit_code", [0, 3])
def test_trinos_exit_code_is_the_scripts(worker, exit_code):
    assert worker(exit_code=exit_code).finish()[0] == exit_code


def test_a_stale_stop_file_is_cleared_at_start(worker, tmp_path):
    (tmp_path / "stop-now").write_text("")
    started = worker()
    started.trino()

    assert not started.stop_now.exists()


@pytest.mark.parametrize(
    ("seconds", "written"),
    [(0, "0s"), (35, "35s"), (60, "1m0s"), (265, "4m25s"), (3600, "1h0m0s"), (3661, "1h1m1s")],
)
def test_durations_are_written_as_pebble_writes_them_back(seconds, written):
    assert shutdown.go_duration(seconds) == written


def test_pebble_kills_before_the_kubelet_does():
    grace = 120.0
    delay = shutdown.kill_delay_seconds(grace)
    assert delay >= 2 * grace + 20  # the tasks get the rest
    assert delay + shutdown.PEBBLE_MARGIN == rolling.termination_grace_seconds(grace)
