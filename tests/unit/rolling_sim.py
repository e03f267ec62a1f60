"""A coordinator application and a worker application, driven hook by hook.

Each unit is the real charm run through ``ops.testing``, with its own container
filesystem. Between hooks this module plays Juju: it copies what one unit wrote
(peer unit and application data, the coordinator's relation data and secret) to
the other units, queues the events Juju would send, and plays Trino: a restarted
node is down until "time passes", a drained worker is draining until then.

Run it alone to watch a catalog change roll through the workers:

    tox exec -e unit -- python tests/unit/rolling_sim.py
"""

from __future__ import annotations

import collections
import dataclasses
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

COORDINATOR, WORKER = "trino", "trino-worker"
PEER_ID, CLUSTER_ID = 1, 2


@dataclasses.dataclass
class Node:
    """One unit: its charm state, and the Trino it runs as the simulation sees it."""

    app: str
    number: int
    state: testing.State
    etc: pathlib.Path
    trino: str = "stopped"  # stopped, up, restarting, draining
    restarts: int = 0

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

    def __init__(self, root: pathlib.Path, workers: int = 3):
        self.log: list[str] = []
        self.nodes: dict[str, Node] = {}
        self.queue: collections.deque[tuple[str, Callable[[testing.Context, Node], Any], str]] = (
            collections.deque()
        )
        self.current: Node | None = None
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
        self.log.append(line)

    # Playing Trino: what the charm would see over HTTP and from Pebble.

    def _probe(self, *_: Any, **__: Any) -> workload.TrinoInfo | None:
        assert self.current is not None
        return self.current.info()

    def _drain(self, *_: Any, **__: Any) -> None:
        assert self.current is not None
        self.current.trino = "draining"
        self.current.restarts += 1
        self.say(f"  {self.current.name}: drain requested (PUT /v1/info/state)")
        self._count_down()

    def _pebble(self, name: str) -> Callable[..., Any]:
        original = getattr(ops.Container, name)

        def spy(container: ops.Container, *args: Any, **kwargs: Any) -> Any:
            node = self.current
            assert node is not None
            if name == "restart":
                node.trino = "restarting"
                node.restarts += 1
                self.say(f"  {node.name}: Trino restarts")
            elif name == "replan" and node.trino == "stopped":
                node.trino = "restarting"
                self.say(f"  {node.name}: Trino starts")
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
        try:
            node.state = ctx.run(event(ctx, node), node.state)
        finally:
            self.current = None
        status = node.state.unit_status
        self.say(f"{node.name} <- {why}: {status.name} {status.message}".rstrip())
        self._propagate(node, before)

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

    def _enqueue(
        self, node: Node, why: str, event: Callable[[testing.Context, Node], Any]
    ) -> None:
        if any(name == node.name and reason == why for name, _, reason in self.queue):
            return  # Juju folds repeated changes into the hook still to come
        self.queue.append((node.name, event, why))

    def settle(self, max_hooks: int = 500) -> None:
        """Run queued hooks; when none is left, let time pass for a node that is down."""
        for _ in range(max_hooks):
            if self.queue:
                name, event, why = self.queue.popleft()
                self.run(self.nodes[name], event, why)
                continue
            down = [
                node for node in self.nodes.values() if node.trino in ("restarting", "draining")
            ]
            if not down:
                return
            node = down[0]
            self.say(f"  ... time passes: {node.name} serves again")
            node.trino = "up"
            self.run(node, lambda ctx, n: ctx.on.update_status(), "update-status")
        raise AssertionError("the cluster never settled")

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


def catalog_change(root: pathlib.Path) -> Simulation:
    """Start the cluster, then add a catalog on the coordinator and let it roll."""
    import contextlib  # noqa: PLC0415

    sim = Simulation(root)
    with contextlib.ExitStack() as stack:
        for patch in sim.patches():
            stack.enter_context(patch)
        sim.say("== the cluster starts")
        for node in sim.nodes.values():
            sim._enqueue(node, "trino-pebble-ready", _pebble_ready)
        sim.settle()
        for node in sim.nodes.values():
            node.restarts = 0
        sim.most_down = 0
        sim.say("== juju config trino catalog-config='tiny: {connector: tpch}'")
        coordinator = sim.nodes[f"{COORDINATOR}/0"]
        coordinator.state = dataclasses.replace(
            coordinator.state,
            config={**coordinator.state.config, "catalog-config": "tiny: {connector: tpch}"},
        )
        sim._enqueue(coordinator, "config-changed", lambda ctx, n: ctx.on.config_changed())
        sim.settle()
    return sim


def _pebble_ready(ctx: testing.Context, node: Node) -> Any:
    return ctx.on.pebble_ready(node.state.get_container("trino"))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        result = catalog_change(pathlib.Path(tmp))
        print("\n".join(result.log))
        print(f"\nmost workers down at once: {result.most_down}")
        print("restarts: " + ", ".join(f"{n.name}={n.restarts}" for n in result.nodes.values()))
