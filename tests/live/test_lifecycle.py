"""Juju and Kubernetes as they really are: refresh, pod churn, scale-down, leadership.

Two coordinator units (one leader, one standby) and two workers, with the sequences
`juju.py` and `kube.py` play from Juju's and Kubernetes' source. Clients reach the
cluster through the application's Service (`trino.live.svc.cluster.local`), as they
do in a model; queries run while each sequence plays, and none that was running on a
node that goes away may fail.

The tests run in order on one cluster: each leaves it as the next one needs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import ops
import pytest
import sql
from conftest import wait_for
from juju import Juju, Unit
from kube import Deletion, Kubernetes
from lab import ACTIVE_NODES, once_listed
from ops import testing
from test_cluster import JOIN, JOIN_ROWS, active, running_tasks, service_pid
from test_single_node import boot

GRACE = "15s"
FULL_GRACE = 2 * 15 + 30  # the charm's terminationGracePeriodSeconds for that grace
QUICK = "SELECT count(*) FROM tpch.tiny.orders"


@dataclass
class Lab:
    juju: Juju
    kube: Kubernetes
    coordinators: list[Unit]
    workers: list[Unit]

    @property
    def url(self) -> str:
        """The application's Service, as a client in the model reaches it."""
        return f"http://{self.kube.service_ip('trino')}:8080"

    def query(self, statement: str) -> list[list]:
        return sql.execute(self.url, statement)


@pytest.fixture(scope="module")
def lab(juju: Juju, kube: Kubernetes, pods) -> Lab:
    catalogs = "tpch:\n  connector: tpch\n"
    coordinator = juju.deploy(
        "trino",
        [pods("trino", 0), pods("trino", 1)],
        {"charm-function": "coordinator", "catalog-config": catalogs},
    )
    workers = juju.deploy(
        "trino-worker",
        [pods("trino-worker", 0), pods("trino-worker", 1)],
        {"charm-function": "worker", "graceful-shutdown-period": GRACE},
    )
    for unit in [*coordinator.units, *workers.units]:
        boot(juju, unit)
    juju.integrate("trino", "trino-coordinator", "trino-worker", "trino-worker", "trino_cluster")
    juju.settle()
    lab = Lab(juju, kube, list(coordinator.units), list(workers.units))
    for unit in [lab.coordinators[0], *lab.workers]:
        wait_for(f"{unit.name} active", lambda unit=unit: active(juju, unit), timeout=300, poll=3)
    serving(lab)
    return lab


def serving(lab: Lab, nodes: int = 3, timeout: float = 180) -> None:
    """Queries through the Service work, with every worker running tpch tasks."""
    lab.juju.settle()
    wait_for(
        f"{nodes} active nodes behind the Service",
        lambda: _try(lambda: lab.query(ACTIVE_NODES)[0][0] == nodes),
        timeout=timeout,
        poll=2,
    )
    assert once_listed(lambda: lab.query(QUICK)) == [[15000]]


def _try(run):
    try:
        return run()
    except (sql.QueryError, OSError):
        return False


@dataclass
class Load:
    """Queries back to back through the Service, and what became of each."""

    lab: Lab
    stop: threading.Event = field(default_factory=threading.Event)
    results: list[tuple[float, float, str]] = field(default_factory=list)

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                rows = self.lab.query(
                    "SELECT count(*) FROM tpch.sf1.orders WHERE totalprice > 1000"
                )
                outcome = "ok" if rows and rows[0][0] > 0 else f"bad rows {rows}"
            except (sql.QueryError, OSError) as error:
                outcome = f"error: {error}"
            self.results.append((started, time.monotonic(), outcome))

    def __enter__(self) -> Load:
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=300)

    def failures(self) -> list[str]:
        return [outcome for _, _, outcome in self.results if outcome != "ok"]


@dataclass
class Join:
    """The long join, started in the background, with tasks on a given node."""

    lab: Lab
    outcome: dict[str, object] = field(default_factory=dict)

    def start(self, node: Unit) -> Join:
        def run() -> None:
            try:
                self.outcome["rows"] = self.lab.query(JOIN)
            except (sql.QueryError, OSError) as error:
                self.outcome["error"] = str(error)

        self.thread = threading.Thread(target=run)
        self.thread.start()
        name = node.name.replace("/", "-")
        wait_for(
            f"tasks of the join running on {name}",
            lambda: not self.thread.is_alive() or _try(lambda: running_tasks(self.lab, name)),  # type: ignore[arg-type]
            timeout=120,
        )
        assert self.thread.is_alive(), f"the join ended too soon: {self.outcome}"
        return self

    def result(self) -> dict[str, object]:
        self.thread.join(timeout=300)
        return self.outcome


def while_it_runs_there(lab: Lab, unit: Unit, sequence: Callable[[Unit], Deletion]) -> Deletion:
    """``sequence`` on a worker with tasks of the join on it, queries back to back beside.

    The join must return the right count and no other query may fail.
    """
    with Load(lab) as load:
        join = Join(lab).start(unit)
        deletion = sequence(unit)
        outcome = join.result()
    print(f"{unit.name}: {deletion}; {len(load.results)} queries beside the join")
    assert outcome.get("rows") == JOIN_ROWS, outcome
    assert not load.failures(), load.failures()
    return deletion


def test_the_standby_is_ready_but_gets_no_client(lab: Lab):
    """The Service sends clients to the leader's pod; the standby's pod stays Ready."""
    leader, standby = lab.coordinators
    assert standby.state is not None
    assert standby.state.unit_status.name == "waiting"  # standby: runs no Trino
    assert lab.kube.ready(standby.pod.name)  # type: ignore[union-attr]  # no stalled rollout
    selector = lab.kube.services["trino"]["spec"]["selector"]
    assert selector == {
        "app.kubernetes.io/name": "trino",
        "statefulset.kubernetes.io/pod-name": "trino-0",
    }
    assert [pod.name for pod in lab.kube.endpoints("trino")] == ["trino-0"]
    # Every connection reaches a Trino (the proxy picks at random among the endpoints).
    for _ in range(10):
        assert lab.query("SELECT 1") == [[1]]
    assert leader.state is not None and leader.state.unit_status.name == "active"


def test_a_refresh_of_the_coordinators_is_not_held_up_by_the_standby(lab: Lab):
    """Kubernetes rolls both coordinator pods: the standby's is Ready, so the roll goes on."""
    leader = lab.coordinators[0]
    deleted = lab.juju.refresh("trino")

    assert [name for name, _ in deleted] == ["trino-1", "trino-0"]
    wait_for("the leader back", lambda: active(lab.juju, leader), timeout=300, poll=3)
    serving(lab)
    # Juju's re-applied Service merged into the charm's selector: still the leader only.
    assert [pod.name for pod in lab.kube.endpoints("trino")] == ["trino-0"]


def test_refresh_puts_the_full_grace_back_before_any_worker_serves(lab: Lab):
    """Juju's template resets the grace to 30 s; the first new pod's upgrade-charm restores it."""
    before = {unit.name: service_pid(unit) for unit in lab.workers}
    with Load(lab) as load:
        time.sleep(3)
        deleted = lab.juju.refresh("trino-worker")
        for unit in lab.workers:
            wait_for(
                f"{unit.name} active", lambda u=unit: active(lab.juju, u), timeout=300, poll=3
            )
        serving(lab)
    print(f"refresh: deletions {deleted}; {len(load.results)} queries; {load.failures()}")
    template = lab.kube.template("trino-worker")["spec"]
    assert template["terminationGracePeriodSeconds"] == FULL_GRACE
    assert {r.grace for r in lab.kube.pods.values() if r.app == "trino-worker"} == {FULL_GRACE}
    # The pods that ran Trino before the refresh went with their full grace; the one
    # pod made from Juju's template was made again before its Trino had any task.
    assert deleted[0] == ("trino-worker-1", FULL_GRACE)
    assert deleted[1] == ("trino-worker-1", 30)
    assert deleted[2:] == [("trino-worker-0", FULL_GRACE)]
    patches = [p for kind, _, p in lab.kube.patches if kind == "statefulsets"]
    assert patches[-1]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == FULL_GRACE
    assert not [d for d in lab.kube.deletions if d.killed], lab.kube.deletions
    assert not load.failures(), load.failures()
    assert all(service_pid(unit) not in ("", before[unit.name]) for unit in lab.workers)


def test_a_pod_deleted_after_the_refresh_finishes_its_query(lab: Lab):
    """Pod churn: SIGTERM mid-query, the `stop` hook on the old pod, hooks on the new one."""
    worker = lab.workers[0]
    first = len(lab.juju.hooks)
    deletion = while_it_runs_there(lab, worker, lab.juju.churn)
    assert deletion.grace == FULL_GRACE
    assert not deletion.killed, "the kubelet had to SIGKILL the drain"
    hooks = [event for unit, event in lab.juju.hooks[first:] if unit == worker.name]
    assert hooks[:5] == [
        "stop",
        "upgrade_charm",
        "config_changed",
        "start",
        "trino_pebble_ready",
    ], hooks
    wait_for(f"{worker.name} active", lambda: active(lab.juju, worker), timeout=300, poll=3)
    serving(lab)


def test_remove_unit_drains_the_worker_before_its_pod_goes(lab: Lab):
    """departed, broken (the drain), stop, remove; only then the pod's deletion."""
    leaving = lab.workers[1]
    first = len(lab.juju.hooks)
    deletion = while_it_runs_there(lab, leaving, lab.juju.remove_unit)

    hooks = [event for unit, event in lab.juju.hooks[first:] if unit == leaving.name]
    assert hooks == [
        "trino_worker_relation_departed",
        "trino_worker_relation_departed",
        "trino_worker_relation_broken",
        "trino_peers_relation_departed",
        "stop",
        "remove",
    ], hooks
    # Trino had drained and stopped before the pod went: a running Trino would have
    # drained again on the pod's SIGTERM, for at least twice the grace period.
    assert deletion.seconds < 10 and not deletion.killed, deletion
    lab.workers.remove(leaving)
    serving(lab, nodes=2)


def test_leadership_moves_without_restarting_the_workers(lab: Lab):
    """The leader's unit goes; the standby takes over the same Service address."""
    old, new = lab.coordinators
    before = {unit.name: service_pid(unit) for unit in lab.workers}
    lab.juju.remove_unit(old)
    assert new.app.leader == new.number
    lab.coordinators.remove(old)

    def served() -> float | None:
        lab.juju.deliver_notices(new)
        lab.juju.settle()
        return time.monotonic() if active(lab.juju, new) else None

    serving_at = wait_for("the new leader serving", served, timeout=300, poll=2)
    wait_for(
        "queries through the Service again",
        lambda: _try(lambda: lab.query(ACTIVE_NODES)[0][0] == 2),
        timeout=120,
        poll=1,
    )
    took = time.monotonic() - float(serving_at)  # type: ignore[arg-type]
    print(f"leadership: queries through the Service {took:.1f}s after the new leader served")
    assert took < 30
    assert once_listed(lambda: lab.query(QUICK)) == [[15000]]
    assert [pod.name for pod in lab.kube.endpoints("trino")] == ["trino-1"]
    assert {unit.name: service_pid(unit) for unit in lab.workers} == before, "a worker restarted"


def test_remove_relation_drains_the_worker_before_it_stops(lab: Lab):
    worker = lab.workers[0]
    join = Join(lab).start(worker)
    relation = next(r for r in lab.juju.relations if r.interface == "trino_cluster")

    lab.juju.remove_relation(relation)
    outcome = join.result()

    assert outcome.get("rows") == JOIN_ROWS, outcome
    assert worker.pod is not None
    client = ops.pebble.Client(socket_path=worker.pod.socket)
    assert client.get_services(["trino"])[0].current == ops.pebble.ServiceStatus.INACTIVE
    assert "run-worker: SIGTERM: draining" in worker.pod.pebble_log.read_text()
    assert isinstance(worker.state.unit_status, testing.WaitingStatus)  # type: ignore[union-attr]
