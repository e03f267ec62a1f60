"""A coordinator and two workers under password authentication, and a rolling restart.

The coordinator sits behind an https ingress (played by the test: it forwards plain
HTTP with `X-Forwarded-Proto: https`), so passwords are on. A catalog change rolls
through the charm's own restart path: the workers drain one at a time with the charm
user's password, queries keep running, and each worker comes back on the new files.
"""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import ops
import pytest
import sql
from conftest import wait_for
from juju import Juju, Unit
from lab import ACTIVE_NODES, once_listed
from ops import testing
from test_single_node import boot

# Long enough for a busy coordinator to see a worker drain before the worker stops
# taking tasks (with 5 s, a loaded CI machine lost a task to a worker already gone).
GRACE = "15s"
PASSWORD = "correct-horse-battery"
LONG_QUERY = "SELECT count(*) FROM tpch.sf1.orders WHERE totalprice > 1000"


@dataclass
class Cluster:
    coordinator: Unit
    workers: list[Unit]

    @property
    def url(self) -> str:
        assert self.coordinator.pod is not None
        return f"http://{self.coordinator.pod.ip}:8080"

    def query(self, statement: str) -> list[list]:
        return sql.execute(self.url, statement, "alice", PASSWORD, forwarded_https=True)


def active_nodes(cluster: Cluster) -> int:
    return once_listed(lambda: cluster.query(ACTIVE_NODES))[0][0]


def worker_state(unit: Unit) -> str:
    """What the worker's public /v1/info/state says, or 'down'."""
    assert unit.pod is not None
    try:
        url = f"http://{unit.pod.ip}:8080/v1/info"
        with urllib.request.urlopen(url, timeout=2) as response:
            if b'"starting":false' not in response.read():
                return "starting"
        with urllib.request.urlopen(f"{url}/state", timeout=2) as response:
            return response.read().decode().strip('"')
    except OSError:
        return "down"


def service_pid(unit: Unit) -> str:
    """The pid of Trino's JVM in the pod (a new one after every restart), or ''."""
    assert unit.pod is not None
    pids = subprocess.run(["ip", "netns", "pids", unit.pod.netns], capture_output=True, text=True)
    for pid in pids.stdout.split():
        with contextlib.suppress(OSError):
            if b"io.trino.server.TrinoServer" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return ""


def active(juju: Juju, unit: Unit) -> bool:
    state = juju.run(unit, lambda ctx, _: ctx.on.update_status())
    return isinstance(state.unit_status, testing.ActiveStatus)


@pytest.fixture(scope="module")
def cluster(juju: Juju, pods) -> Cluster:
    users = juju.add_secret("operator", {"users": f"alice: {PASSWORD}\n"}, grant_to="trino")
    catalogs = "tpch:\n  connector: tpch\n"
    coordinator = juju.deploy(
        "trino",
        [pods("trino", 0)],
        {"charm-function": "coordinator", "catalog-config": catalogs, "user-secret-id": users},
    )
    workers = juju.deploy(
        "trino-worker",
        [pods("trino-worker", 0), pods("trino-worker", 1)],
        {"charm-function": "worker", "graceful-shutdown-period": GRACE},
    )
    ingress = juju.remote_app("traefik")
    relation = juju.integrate("trino", "ingress", "traefik", "ingress", "ingress")
    relation.app_data["traefik"] = {"ingress": '{"url": "https://trino.example.test/"}'}
    for unit in [*coordinator.units, *workers.units]:
        boot(juju, unit)
    juju.integrate("trino", "trino-coordinator", "trino-worker", "trino-worker", "trino_cluster")
    juju.settle()
    assert ingress.units
    units = [*coordinator.units, *workers.units]
    for unit in units:
        wait_for(f"{unit.name} active", lambda unit=unit: active(juju, unit), timeout=300, poll=3)
    return Cluster(coordinator.units[0], workers.units)


def test_three_nodes_active_and_queries_need_the_password(cluster: Cluster):
    wait_for("3 active nodes", lambda: active_nodes(cluster) == 3, timeout=120, poll=2)
    with pytest.raises(sql.QueryError) as refused:
        sql.execute(cluster.url, "SELECT 1", "alice", "wrong", forwarded_https=True)
    assert refused.value.status == 401
    assert once_listed(lambda: cluster.query("SELECT count(*) FROM tpch.tiny.nation")) == [[25]]


@dataclass
class Watch:
    """Queries run back to back, and how many workers were out at once, during a roll."""

    cluster: Cluster
    stop: threading.Event = field(default_factory=threading.Event)
    results: list[tuple[float, float, str]] = field(default_factory=list)
    states: list[tuple[float, dict[str, str]]] = field(default_factory=list)

    def queries(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                rows = self.cluster.query(LONG_QUERY)
                outcome = "ok" if rows and rows[0][0] > 0 else f"bad rows {rows}"
            except sql.QueryError as error:
                outcome = f"error: {error}"
            self.results.append((start, time.monotonic(), outcome))

    def workers(self) -> None:
        while not self.stop.is_set():
            states = {unit.name: worker_state(unit) for unit in self.cluster.workers}
            self.states.append((time.monotonic(), states))
            time.sleep(0.5)

    def out(self, states: dict[str, str]) -> list[str]:
        return [name for name, state in states.items() if state != "ACTIVE"]


def test_catalog_change_rolls_the_workers_one_at_a_time_under_load(cluster: Cluster, juju: Juju):
    coordinator = cluster.coordinator
    before = {unit.name: service_pid(unit) for unit in cluster.workers}
    catalogs = "tpch:\n  connector: tpch\nscratch:\n  connector: memory\n"
    juju.config("trino", **{"catalog-config": catalogs})
    # The coordinator restarts on its own (it is alone in its application) ...
    wait_for("the coordinator back", lambda: active(juju, coordinator), timeout=300, poll=3)
    wait_for(
        "both workers back in the cluster",
        lambda: active_nodes(cluster) == 3,
        timeout=120,
        poll=2,
    )
    # ... then the workers roll while queries run.
    watch = Watch(cluster)
    threads = [threading.Thread(target=watch.queries), threading.Thread(target=watch.workers)]
    for thread in threads:
        thread.start()
    drained: dict[str, float] = {}
    try:
        wait_for("a query under way", lambda: watch.states, timeout=30)
        time.sleep(3)

        def rolled() -> bool:
            juju.settle()
            for unit in cluster.workers:
                if unit.name not in drained and any(
                    s[unit.name] == "SHUTTING_DOWN" for _, s in watch.states
                ):
                    drained[unit.name] = time.monotonic()
            juju.tick("trino-worker")
            done = all(service_pid(u) not in ("", before[u.name]) for u in cluster.workers)
            return done and all(active(juju, u) for u in cluster.workers)

        wait_for("both workers restarted and active", rolled, timeout=900, poll=3)
        # One more query after the roll, on the new catalog: every node has it.
        assert cluster.query("SELECT count(*) FROM scratch.information_schema.schemata")
    finally:
        watch.stop.set()
        for thread in threads:
            thread.join(timeout=700)

    failures = [outcome for _, _, outcome in watch.results if outcome != "ok"]
    assert not failures, failures
    assert len(drained) == 2, f"each worker drained (SHUTTING_DOWN seen): {drained}"
    for name, when in drained.items():
        overlapping = [r for r in watch.results if r[0] <= when <= r[1]]
        assert overlapping, f"no query was running when {name} began to drain"
    worst = max(len(watch.out(states)) for _, states in watch.states)
    assert worst <= 1, f"{worst} workers were out at once"
    for unit in cluster.workers:
        assert unit.pod is not None
        assert (unit.pod.etc / "catalog" / "scratch.properties").exists()
    with contextlib.suppress(Exception):
        print(f"roll: {len(watch.results)} queries, drains at {drained}")


def test_a_catalog_trino_refuses_stops_at_the_coordinator(cluster: Cluster, juju: Juju):
    """Point 8: blocked with Trino's real error line; the workers keep their last good files."""
    coordinator = cluster.coordinator
    before = {unit.name: service_pid(unit) for unit in cluster.workers}
    typo = "tpch:\n  connector: tpch\nscratch:\n  connector: memory\n  properties:\n"
    typo += "    memory.max-data-per-nodes: 1GB\n"  # a typo of memory.max-data-per-node
    juju.config("trino", **{"catalog-config": typo})

    def blocked() -> str:
        juju.settle()
        state = juju.run(coordinator, lambda ctx, _: ctx.on.update_status())
        status = state.unit_status
        return status.message if isinstance(status, testing.BlockedStatus) else ""

    message = str(wait_for("the coordinator blocked", blocked, timeout=300, poll=2))
    print(f"coordinator status: {message}")
    assert "restart failed" in message
    assert "Trino says:" in message
    assert "memory.max-data-per-nodes" in message, message
    juju.tick("trino-worker")
    for unit in cluster.workers:
        assert unit.pod is not None
        assert service_pid(unit) == before[unit.name], f"{unit.name} was restarted"
        assert worker_state(unit) == "ACTIVE"
        assert (
            "max-data-per-nodes"
            not in (unit.pod.etc / "catalog" / "scratch.properties").read_text()
        )

    # The fix: the coordinator comes back; the workers never needed a restart.
    juju.config(
        "trino", **{"catalog-config": "tpch:\n  connector: tpch\nscratch:\n  connector: memory\n"}
    )
    wait_for("the coordinator back", lambda: active(juju, coordinator), timeout=300, poll=3)
    juju.settle()
    juju.tick("trino-worker")
    assert {unit.name: service_pid(unit) for unit in cluster.workers} == before
    assert once_listed(lambda: cluster.query("SELECT count(*) FROM tpch.tiny.region")) == [[5]]


# Pod deletion. Kubernetes sends SIGTERM to the trino container's Pebble; these tests
# do exactly that, so they come last: they take the pods down.
JOIN = (
    "SELECT count(*) FROM tpch.sf1.lineitem l JOIN tpch.sf1.orders o "
    "ON l.orderkey = o.orderkey /* pod-deletion */"
)
JOIN_ROWS = [[6001215]]  # TPC-H scale 1: every line item has its order


def running_tasks(cluster: Cluster, node: str) -> int:
    """Running tasks of the JOIN query on `node` (its node.id)."""
    tasks = "SELECT count(*) FROM system.runtime.tasks WHERE state = 'RUNNING' AND node_id = "
    queries = "SELECT query_id FROM system.runtime.queries WHERE state = 'RUNNING' AND query"
    statement = f"{tasks}'{node}' AND query_id IN ({queries} LIKE '%pod-deletion */')"
    return cluster.query(statement)[0][0]


@dataclass
class Exits:
    """When the JVM and Pebble of a pod were first seen gone, from `start`."""

    unit: Unit
    start: float = field(default_factory=time.monotonic)
    jvm: float | None = None
    pebble: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        pod = self.unit.pod
        assert pod is not None and pod.process is not None
        process = pod.process
        while not self.stop.is_set() and (self.jvm is None or self.pebble is None):
            now = time.monotonic() - self.start
            if self.jvm is None and not service_pid(self.unit):
                self.jvm = now
            if self.pebble is None and process.poll() is not None:
                self.pebble = now
            time.sleep(0.1)


def sigterm_pebble(unit: Unit, timeout: float) -> tuple[Exits, int | None]:
    """What Kubernetes does to a deleted pod's trino container; when things exited."""
    assert unit.pod is not None
    exits = Exits(unit)
    watcher = threading.Thread(target=exits.watch)
    watcher.start()
    code = unit.pod.stop_pebble(timeout=timeout)  # SIGTERM, then wait (SIGKILL at timeout)
    watcher.join(timeout=5)
    exits.stop.set()
    return exits, code


def test_a_worker_whose_pod_is_deleted_finishes_its_tasks(cluster: Cluster):
    """SIGTERM to a worker's Pebble while a query runs there: the query completes."""
    worker = cluster.workers[0]
    assert worker.pod is not None
    node = worker.name.replace("/", "-")
    kill_delay = 2 * 15 + 25  # graceful-shutdown-period 15s: the layer's kill-delay
    service = ops.pebble.Client(socket_path=worker.pod.socket).get_services(["trino"])[0]
    assert service.current == ops.pebble.ServiceStatus.ACTIVE
    plan = ops.pebble.Client(socket_path=worker.pod.socket).get_plan().services["trino"]
    assert (plan.command, plan.kill_delay) == ("/bin/bash /etc/trino/run-worker.sh", "55s")

    outcome: dict[str, object] = {}

    def query() -> None:
        started = time.monotonic()
        try:
            outcome["rows"] = cluster.query(JOIN)
        except sql.QueryError as error:
            outcome["error"] = str(error)
        outcome["seconds"] = time.monotonic() - started
        outcome["finished"] = time.monotonic()

    thread = threading.Thread(target=query)
    thread.start()
    try:
        wait_for(
            f"tasks of the query running on {node}",
            lambda: not thread.is_alive() or running_tasks(cluster, node),
            timeout=120,
        )
        assert thread.is_alive(), f"the query ended before the pod was deleted: {outcome}"
        exits, code = sigterm_pebble(worker, timeout=kill_delay + 30)
    finally:
        thread.join(timeout=300)

    finished = float(outcome["finished"]) - exits.start  # type: ignore[arg-type]
    print(
        f"pod deletion of {worker.name}: SIGTERM to Pebble at 0 s; the query (took "
        f"{outcome['seconds']:.0f} s) finished at {finished:.1f} s; Trino exited at "
        f"{exits.jvm} s, Pebble at {exits.pebble} s with code {code}; kill-delay {kill_delay} s"
    )
    assert outcome.get("rows") == JOIN_ROWS, outcome
    assert finished > 0, "the query was still running when the pod was deleted"
    log = worker.pod.pebble_log.read_text()
    assert "run-worker: SIGTERM: draining" in log
    assert exits.jvm is not None and exits.pebble is not None
    assert exits.jvm <= exits.pebble, "Pebble exited before Trino"
    assert exits.pebble < kill_delay, "Trino exited by itself, before Pebble's SIGKILL"
    assert code == 0


def test_a_coordinator_whose_pod_is_deleted_stops_at_once(cluster: Cluster):
    """A coordinator does not drain: SIGTERM stops Trino within Pebble's default 5 s."""
    coordinator = cluster.coordinator
    assert coordinator.pod is not None
    plan = ops.pebble.Client(socket_path=coordinator.pod.socket).get_plan().services["trino"]
    assert plan.command == "/usr/lib/trino/bin/launcher run --etc-dir /etc/trino"
    assert plan.kill_delay == ""

    exits, code = sigterm_pebble(coordinator, timeout=30)

    print(
        f"pod deletion of {coordinator.name}: Trino exited at {exits.jvm} s, Pebble at "
        f"{exits.pebble} s with code {code}"
    )
    assert exits.jvm is not None and exits.pebble is not None
    assert exits.jvm <= exits.pebble < 5 + 5  # Pebble's default kill-delay, then its exit
    assert code == 0
