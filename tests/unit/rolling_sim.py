"""A coordinator application and a worker application, driven hook by hook.

Each unit is the real charm run through ``ops.testing``, with its own container
filesystem. Between hooks this module plays Juju: it copies what one unit wrote
(peer unit and application data, the coordinator's relation data and secret) to
the other units, queues the events Juju would send, and plays Trino: a restarted
node is down for ``Timing.start`` seconds, a drained worker drains for
``Timing.drain`` seconds first. A simulated clock orders it all: hooks take
``Timing.hook`` seconds, one at a time per unit and in parallel across units, as
Juju's unit agents run them; Pebble's check sends its notice within a check
period of Trino's change; update-status comes every ``Timing.update_status``.

Run it alone to watch a catalog change roll through the workers:

    tox exec -e unit -- python tests/unit/rolling_sim.py [workers]
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import json
import math
import pathlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import ops
from ops import testing

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (ROOT / "src", ROOT / "lib"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import restarts  # noqa: E402
import status  # noqa: E402
import workload  # noqa: E402
from charm import TrinoK8sCharm  # noqa: E402
from core.plan import NOTICE_NOT_READY, NOTICE_READY  # noqa: E402

COORDINATOR, WORKER = "trino", "trino-worker"
PEER_ID, CLUSTER_ID = 1, 2


@dataclasses.dataclass(frozen=True)
class Timing:
    """How long things take, in seconds of the simulated clock."""

    drain: float = 30.0  # drain request -> Trino exits (its tasks done; <= 2 x grace period)
    start: float = 30.0  # Pebble starts Trino -> /v1/info says it has started
    hook: float = 1.0  # one hook, from its start to its end
    delivery: float = 0.5  # a change (relation data, a notice) -> Juju starts the hook
    check_period: float = 2.0  # Pebble's trino-ready check (core.plan.CHECK_PERIOD)
    update_status: float = math.inf  # update-status-hook-interval (Juju's default: 300)
    notices: bool = True  # the check notifies the charm (False: the charm before issue 13)


@dataclasses.dataclass
class Node:
    """One unit: its charm state, and the Trino it runs as the simulation sees it."""

    app: str
    number: int
    state: testing.State
    etc: pathlib.Path
    trino: str = "stopped"  # stopped, up, restarting, draining
    restarts: int = 0
    busy_until: float = 0.0  # the end of the hook it runs (a unit runs one at a time)
    notified: str = "not-ready"  # what Pebble's check last told the charm
    up_at: float | None = None  # when Trino last became ready, until the unit says active

    @property
    def name(self) -> str:
        return f"{self.app}/{self.number}"

    def info(self) -> workload.TrinoInfo | None:
        if self.trino == "up":
            return workload.TrinoInfo(starting=False, version="483")
        if self.trino == "draining":
            return workload.TrinoInfo(starting=False, version="483", state="SHUTTING_DOWN")
        return None


class Simulation:
    """Juju and Trino around one coordinator unit and ``workers`` worker units."""

    def __init__(self, root: pathlib.Path, workers: int = 3, timing: Timing | None = None):
        self.timing = timing or Timing()
        self.now = 0.0
        self.log: list[str] = []
        self.nodes: dict[str, Node] = {}
        # (time, order, unit, what): hooks, Trino's own changes and checks, update-status.
        self.timeline: list[tuple[float, int, str, str, Callable[[], None]]] = []
        self._order = itertools.count()
        self.queued: set[tuple[str, str]] = set()  # hooks waiting to run: (unit, why)
        self.hooks: collections.Counter[str] = collections.Counter()
        self.ready_to_active: list[float] = []  # Trino ready -> the unit says active
        self.current: Node | None = None
        self.roll_started = 0.0
        self.roll_seconds = 0.0
        self.most_down = 0  # the most workers not serving at once
        self.early: list[str] = []  # workers seen with new files before their turn
        self._add(COORDINATOR, 0, root, {"charm-function": "coordinator"}, workers)
        for number in range(workers):
            self._add(WORKER, number, root, {"charm-function": "worker"}, workers)

    # Setting up.

    def _add(self, app: str, number: int, root: pathlib.Path, config: dict, workers: int) -> None:
        etc = root / f"{app}-{number}"
        etc.mkdir()
        container = testing.Container(
            "trino",
            can_connect=True,
            mounts={"etc": testing.Mount(location="/etc/trino", source=etc)},
        )
        size = 1 if app == COORDINATOR else workers
        peers = testing.PeerRelation(
            "trino-peers", id=PEER_ID, peers_data={n: {} for n in range(size) if n != number}
        )
        if app == COORDINATOR:
            cluster = testing.Relation(
                "trino-coordinator",
                id=CLUSTER_ID,
                remote_app_name=WORKER,
                remote_units_data={n: {} for n in range(workers)},
            )
        else:
            cluster = testing.Relation("trino-worker", id=CLUSTER_ID, remote_app_name=COORDINATOR)
        state = testing.State(
            leader=number == 0,
            config=config,
            containers={container},
            relations={peers, cluster},
        )
        node = Node(app, number, state, etc)
        self.nodes[node.name] = node

    @property
    def workers(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.app == WORKER]

    def say(self, line: str) -> None:
        self.log.append(f"{self.now:7.1f}s {line}")

    # Playing Trino: what the charm would see over HTTP and from Pebble.

    def _probe(self, *_: Any, **__: Any) -> workload.TrinoInfo | None:
        assert self.current is not None
        return self.current.info()

    def _drain(self, *_: Any, **__: Any) -> None:
        assert self.current is not None
        node = self.current
        node.trino = "draining"
        node.restarts += 1
        self.say(f"  {node.name}: drain requested (PUT /v1/info/state)")
        self._count_down()
        # Its tasks done, Trino exits; Pebble starts it again on the new files.
        self._at(self.now + self.timing.drain, node, "exits", lambda: self._trino_down(node))

    def _pebble(self, name: str) -> Callable[..., Any]:
        original = getattr(ops.Container, name)

        def spy(container: ops.Container, *args: Any, **kwargs: Any) -> Any:
            node = self.current
            assert node is not None
            if name == "restart":
                node.restarts += 1
                self.say(f"  {node.name}: Trino restarts")
                self._trino_down(node)
            elif name == "replan" and node.trino == "stopped":
                self.say(f"  {node.name}: Trino starts")
                self._trino_down(node)
            self._count_down()
            return original(container, *args, **kwargs)

        return spy

    def early_files(self) -> list[str]:
        """Workers that hold new catalog files but have not restarted onto them yet."""
        return [
            node.name
            for node in self.workers
            if (node.etc / "catalog" / "tiny.properties").exists()
            and node.restarts == 0
            and node is not self.current
        ]

    def _count_down(self) -> None:
        self.early.extend(self.early_files())
        down = [node.name for node in self.workers if node.trino != "up"]
        if all(node.trino != "stopped" for node in self.workers):
            self.most_down = max(self.most_down, len(down))

    # Playing Juju: run a hook, then hand what it wrote to the other units.

    def run(self, node: Node, event: Callable[[testing.Context, Node], Any], why: str) -> None:
        ctx = testing.Context(TrinoK8sCharm, app_name=node.app, unit_id=node.number)
        before = self._shared(node)
        self.current = node
        self.hooks[why] += 1
        try:
            node.state = ctx.run(event(ctx, node), node.state)
        finally:
            self.current = None
        self.now += self.timing.hook  # what the hook changed is seen once it ends
        node.busy_until = self.now
        status = node.state.unit_status
        self.say(f"{node.name} <- {why}: {status.name} {status.message}".rstrip())
        if status.name == "active" and node.up_at is not None and node.trino == "up":
            self.ready_to_active.append(self.now - node.up_at)
            node.up_at = None
        self._propagate(node, before)
        self.now -= self.timing.hook  # other units' hooks may run meanwhile

    def _shared(self, node: Node) -> dict[str, Any]:
        peers = node.state.get_relation(PEER_ID)
        cluster = node.state.get_relation(CLUSTER_ID)
        secret = self._cluster_secret(node)
        return {
            "unit": dict(peers.local_unit_data),
            "app": dict(peers.local_app_data),
            "cluster": dict(cluster.local_app_data) if node.app == COORDINATOR else {},
            "secret": dict(secret.latest_content or secret.tracked_content) if secret else {},
        }

    @staticmethod
    def _cluster_secret(node: Node) -> testing.Secret | None:
        return next((s for s in node.state.secrets if s.label == "trino-cluster"), None)

    def _propagate(self, node: Node, before: dict[str, Any]) -> None:
        after = self._shared(node)
        peers = [n for n in self.nodes.values() if n.app == node.app and n is not node]
        if after["unit"] != before["unit"] or after["app"] != before["app"]:
            for other in peers:
                relation = other.state.get_relation(PEER_ID)
                assert isinstance(relation, testing.PeerRelation)
                data = {**relation.peers_data, node.number: after["unit"]}
                changed = dataclasses.replace(
                    relation, peers_data=data, local_app_data=after["app"]
                )
                other.state = _with_relation(other.state, changed)
                self._enqueue(
                    other, "trino-peers-relation-changed", _relation_changed(PEER_ID, node.number)
                )
        if node.app != COORDINATOR:
            return
        secret = self._cluster_secret(node)
        if after["cluster"] != before["cluster"] or after["secret"] != before["secret"]:
            for worker in self.workers:
                relation = worker.state.get_relation(CLUSTER_ID)
                changed = dataclasses.replace(relation, remote_app_data=after["cluster"])
                state = _with_relation(worker.state, changed)
                if secret is not None:
                    copy = testing.Secret(after["secret"], id=secret.id)
                    others = {s for s in state.secrets if s.id != secret.id}
                    state = dataclasses.replace(state, secrets={*others, copy})
                worker.state = state
                self._enqueue(
                    worker, "trino-worker-relation-changed", _relation_changed(CLUSTER_ID)
                )

    def _at(self, when: float, node: Node, what: str, action: Callable[[], None]) -> None:
        heapq.heappush(self.timeline, (when, next(self._order), node.name, what, action))

    def _enqueue(
        self, node: Node, why: str, event: Callable[[testing.Context, Node], Any]
    ) -> None:
        """Juju starts the hook once it hears of the change and the unit is free."""
        if (node.name, why) in self.queued:
            return  # Juju folds repeated changes into the hook still to come
        self.queued.add((node.name, why))

        def hook() -> None:
            if self.now < node.busy_until:  # the unit still runs another hook
                self._at(node.busy_until, node, why, hook)
                return
            self.queued.discard((node.name, why))
            self.run(node, event, why)

        self._at(self.now + self.timing.delivery, node, why, hook)

    # Playing Trino and Pebble over time.

    def _trino_down(self, node: Node) -> None:
        """Trino (re)starts: not serving until it has started, ``Timing.start`` later."""
        node.trino = "restarting"
        self._check(node)
        self._at(self.now + self.timing.start, node, "serves", lambda: self._trino_up(node))

    def _trino_up(self, node: Node) -> None:
        node.trino = "up"
        node.up_at = self.now
        self.say(f"  {node.name}: Trino serves")
        self._check(node)

    def _check(self, node: Node) -> None:
        """Pebble's check sees the change within a period and notifies on a change."""
        if not self.timing.notices:
            return

        def check() -> None:
            now = "ready" if node.trino == "up" else "not-ready"
            if now != node.notified:
                node.notified = now
                key = NOTICE_READY if now == "ready" else NOTICE_NOT_READY
                self._enqueue(node, f"pebble-custom-notice {key}", _notice(key))

        self._at(self.now + self.timing.check_period, node, "check", check)

    def _update_status(self, node: Node, first: float) -> None:
        def tick() -> None:
            self._enqueue(node, "update-status", lambda ctx, n: ctx.on.update_status())
            self._at(self.now + self.timing.update_status, node, "update-status timer", tick)

        if math.isfinite(self.timing.update_status):
            self._at(first, node, "update-status timer", tick)

    def settled(self) -> bool:
        """Nothing left to happen but update-status, no lock asked for, every unit active."""
        if any(what != "update-status timer" for *_, what, _ in self.timeline):
            return False
        if any(n.trino != "up" for n in self.nodes.values()):
            return False
        for node in self.nodes.values():
            data = node.state.get_relation(PEER_ID).local_unit_data
            if json.loads(data.get("restart_request", "false")):
                return False
        return all(n.state.unit_status.name == "active" for n in self.nodes.values())

    def settle(self, max_events: int = 20000) -> float:
        """Let the clock run until all is settled; the time the last hook ended."""
        end = self.now
        for _ in range(max_events):
            if self.settled():
                return end
            if not self.timeline:
                break
            self.now, _, _, _, action = heapq.heappop(self.timeline)
            action()
            end = max(end, self.now, *(n.busy_until for n in self.nodes.values()))
        raise AssertionError("the cluster never settled:\n" + "\n".join(self.log[-20:]))

    def patches(self) -> Iterator[Any]:
        yield mock.patch.object(status, "probe", self._probe)
        yield mock.patch.object(restarts, "probe", self._probe)
        yield mock.patch.object(restarts, "drain", self._drain)
        for name in ("restart", "replan"):
            yield mock.patch.object(ops.Container, name, self._pebble(name))
        yield mock.patch("k8s_resources.apply_resources", return_value=False)


def _with_relation(state: testing.State, relation: Any) -> testing.State:
    others = {r for r in state.relations if r.id != relation.id}
    return dataclasses.replace(state, relations={*others, relation})


def _relation_changed(
    relation_id: int, remote_unit: int = 0
) -> Callable[[testing.Context, Node], Any]:
    def event(ctx: testing.Context, node: Node) -> Any:
        relation = node.state.get_relation(relation_id)
        return ctx.on.relation_changed(relation, remote_unit=remote_unit)

    return event


def catalog_change(
    root: pathlib.Path, workers: int = 3, timing: Timing | None = None
) -> Simulation:
    """Start the cluster, then add a catalog on the coordinator and let it roll."""
    import contextlib  # noqa: PLC0415

    sim = Simulation(root, workers, timing)
    with contextlib.ExitStack() as stack:
        for patch in sim.patches():
            stack.enter_context(patch)
        sim.say("== the cluster starts")
        for node in sim.nodes.values():
            sim._enqueue(node, "trino-pebble-ready", _pebble_ready)
        units = len(sim.nodes)
        for index, node in enumerate(sim.nodes.values()):
            # Each unit agent has its own update-status timer: spread them out.
            sim._update_status(node, sim.timing.update_status * (index + 1) / (units + 1))
        sim.now = sim.settle()
        for node in sim.nodes.values():
            node.restarts = 0
        sim.most_down = 0
        sim.hooks.clear()
        sim.ready_to_active.clear()
        sim.say("== juju config trino catalog-config='tiny: {connector: tpch}'")
        sim.roll_started = sim.now
        coordinator = sim.nodes[f"{COORDINATOR}/0"]
        coordinator.state = dataclasses.replace(
            coordinator.state,
            config={**coordinator.state.config, "catalog-config": "tiny: {connector: tpch}"},
        )
        sim._enqueue(coordinator, "config-changed", lambda ctx, n: ctx.on.config_changed())
        sim.roll_seconds = sim.settle() - sim.roll_started
    return sim


def roll_goal(workers: int, timing: Timing) -> float:
    """Issue 13's bound: the sum of each unit's drain and start, plus 10 s per unit."""
    coordinator = timing.start + 10
    return coordinator + workers * (timing.drain + timing.start + 10)


def _notice(key: str) -> Callable[[testing.Context, Node], Any]:
    def event(ctx: testing.Context, node: Node) -> Any:
        notice = testing.Notice(key)
        container = dataclasses.replace(node.state.get_container("trino"), notices=[notice])
        node.state = dataclasses.replace(node.state, containers={container})
        return ctx.on.pebble_custom_notice(container, notice)

    return event


def _pebble_ready(ctx: testing.Context, node: Node) -> Any:
    return ctx.on.pebble_ready(node.state.get_container("trino"))


def report(root: pathlib.Path, workers: int, timing: Timing) -> dict[str, float]:
    """The figures the bench prints for one roll."""
    sim = catalog_change(root, workers, timing)
    return {
        "workers": workers,
        "roll_s": sim.roll_seconds,
        "goal_s": roll_goal(workers, timing),
        "update_status_hooks": sim.hooks["update-status"],
        "hooks": sum(sim.hooks.values()),
        "ready_to_active_s": max(sim.ready_to_active, default=0.0),
        "most_down": sim.most_down,
    }


# The charm before issue 13: only update-status (Juju's default 5 minutes) saw Trino back.
BEFORE = Timing(notices=False, update_status=300.0)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        result = catalog_change(pathlib.Path(tmp), count)
        print("\n".join(result.log))
        print(f"\nmost workers down at once: {result.most_down}")
        print("restarts: " + ", ".join(f"{n.name}={n.restarts}" for n in result.nodes.values()))
        print(f"roll: {result.roll_seconds:.0f}s (goal <= {roll_goal(count, result.timing):.0f}s)")
