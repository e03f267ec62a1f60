"""A small stand-in for Juju, written from Juju 3.6's source: it runs the real charm's hooks.

Each hook is a `ops.testing` run of `TrinoK8sCharm`, with two differences from the
unit tests: the `trino` container's Pebble client is a real `ops.pebble.Client` on
the node's Pebble socket (files, layers, services, checks and exec all go to the
real daemon), and the hook runs inside the node's network namespace, so what the
charm asks `localhost:8080` (probe, drain) reaches the node's real Trino. The
charm's lightkube calls go to `kube.Kubernetes`' API server, as the application's
service account (refused until `juju trust`).

Between hooks this model does what Juju does; each sequence cites the juju/juju file
it follows (read on the 3.6 line; where the file was read on a later branch whose logic
is the same, that is said):

- relations: `relation-created` on both sides, then `relation-joined` and
  `relation-changed` for each remote unit; a unit sees another unit of a relation,
  peers included, only once its `relation-joined` for that unit has run
  (`settle`, `integrate`);
- `juju remove-relation`: `relation-departed` for each remote unit, then
  `relation-broken`, on every unit of both sides (`remove_relation`);
- `juju remove-unit`: the dying unit runs `relation-departed` and `relation-broken` for
  each relation (peers last, and no `relation-broken` for peers), then `stop` and
  `remove`; the other units run `relation-departed` for it; only then does the
  StatefulSet shrink and Kubernetes delete the pod; a dying leader resigns and another
  unit runs `leader-elected` (`remove_unit`);
- pod churn: the old pod runs `stop` while its containers get SIGTERM; the new pod runs
  `upgrade-charm`, `config-changed`, `start` and `pebble-ready` (`churn`);
- `juju refresh`: Juju re-applies its pod template (grace 30 s again), Kubernetes rolls the
  pods, and each new pod runs the churn sequence above (`refresh`);
- leadership: the old leader runs no hook, the new one runs `leader-elected` (`elect`);
- secrets: an observer keeps the revision it tracks until it reads with refresh;
  `secret-changed` goes to observers that have not seen the newest revision; a revision
  nobody tracks is obsolete, and its owner gets `secret-remove` for it (`settle`).

Not modelled: hooks of different units running at the same time (Juju runs them in
parallel; here one at a time, except the `stop` hook that runs while a pod is deleted),
`leader-settings-changed`, the 60 s lease before a new leader is chosen (the move is
immediate), `secret-expired` and `secret-rotate`, and the departing unit of a non-peer
relation's `relation-departed` on the dying unit (ops.testing can name only a remote
unit there; the charm does not read it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import ops
import pytest
from kube import Deletion, Kubernetes, PodRecord
from netlab import Pod, inside
from ops import testing
from scenario import mocking

from charm import TrinoK8sCharm

MODEL = "live"
_HOOK_LOCK = threading.RLock()


@dataclasses.dataclass
class SecretRecord:
    owner: str  # application name (app secrets) or unit name (unit secrets)
    content: dict[str, str]
    owner_kind: str  # "app" or "unit"
    label: str | None = None
    revision: int = 1  # the newest
    grants: dict[int, set[str]] = dataclasses.field(default_factory=dict)  # relation -> apps
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # observer app -> label
    revisions: dict[int, dict[str, str]] = dataclasses.field(default_factory=dict)
    tracking: dict[str, int] = dataclasses.field(default_factory=dict)  # observer unit -> rev
    notified: dict[str, int] = dataclasses.field(default_factory=dict)  # secret-changed sent
    removal_sent: set[int] = dataclasses.field(default_factory=set)

    def __post_init__(self) -> None:
        self.revisions.setdefault(self.revision, dict(self.content))

    def publish(self, content: dict[str, str]) -> None:
        self.revision += 1
        self.content = dict(content)
        self.revisions[self.revision] = dict(content)

    def obsolete(self) -> list[int]:
        """Revisions no observer tracks, older than the newest.

        juju/juju state/secrets.go (markObsoleteRevisionOps, getOrphanedSecretRevisions):
        every revision but those some consumer's current-revision holds, once a newer
        one is saved or a consumer moves on.
        """
        held = set(self.tracking.values())
        return sorted(
            r
            for r in self.revisions
            if r < self.revision and r not in held and r not in self.removal_sent
        )


@dataclasses.dataclass
class RelationRecord:
    id: int
    endpoints: dict[str, str]  # application -> its endpoint
    interface: str
    app_data: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    unit_data: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    # The remote units each unit has run relation-joined for (and not departed).
    joined: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    @property
    def peer(self) -> bool:
        return len(self.endpoints) == 1

    def other(self, app: str) -> str:
        return next((name for name in self.endpoints if name != app), app)


@dataclasses.dataclass
class Unit:
    app: App
    number: int
    pod: Pod | None
    state: testing.State | None = None
    seen: str = ""  # what the unit's remote view was at its last hook
    notices_after: datetime.datetime | None = None  # the last custom notice delivered

    @property
    def name(self) -> str:
        return f"{self.app.name}/{self.number}"


@dataclasses.dataclass
class App:
    name: str
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    units: list[Unit] = dataclasses.field(default_factory=list)
    leader: int = 0
    # Remote apps run no charm here: their databags are set by the test.
    remote: bool = False


# What a unit runs in a pod made again (pod churn, refresh): juju/juju
# worker/uniter/resolver/loop.go (checkCharmInstallUpgrade: the charm directory is gone
# with the old pod, so upgrade-charm), operation/runhook.go (config-changed after
# upgrade-charm), worker/uniter/reboot (a sidecar unit's start after a restart) and the
# Pebble poller (pebble-ready once Pebble answers).
NEW_POD_HOOKS: list[Callable[[testing.Context, Any], Any]] = [
    lambda ctx, _: ctx.on.upgrade_charm(),
    lambda ctx, _: ctx.on.config_changed(),
    lambda ctx, _: ctx.on.start(),
    lambda ctx, _: ctx.on.pebble_ready(testing.Container("trino", can_connect=True)),
]


class Juju:
    """Applications, units, relations and secrets of one model, and hooks run on them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kube: Kubernetes):
        self.kube = kube
        self.apps: dict[str, App] = {}
        self.relations: list[RelationRecord] = []
        self.secrets: dict[str, SecretRecord] = {}
        self.hooks: list[tuple[str, str]] = []  # (unit, event) in the order they ran
        self._next_relation = 1
        self._pebble_for: dict[str, str] = {}
        self._rolling = False
        self.rolls: list[tuple[str, list[tuple[str, int]]]] = []  # (app, deletions) per roll
        original = mocking._MockModelBackend.get_pebble
        pebble_for = self._pebble_for

        def get_pebble(backend: mocking._MockModelBackend, socket_path: str) -> ops.pebble.Client:
            unit = backend.unit_name
            if unit in pebble_for:
                return ops.pebble.Client(socket_path=pebble_for[unit])
            return original(backend, socket_path)

        monkeypatch.setattr(mocking._MockModelBackend, "get_pebble", get_pebble)

    # The model.

    def deploy(
        self, name: str, pods: list[Pod], config: dict[str, Any] | None = None, trust: bool = True
    ) -> App:
        """`juju deploy` (with `--trust` unless told otherwise): the objects, then the pods."""
        app = App(name, dict(config or {}))
        if trust:
            self.kube.trusted.add(name)
        self.kube.juju_apply(name)
        for number, pod in enumerate(pods):
            unit = Unit(app, number, pod)
            app.units.append(unit)
            self._pebble_for[unit.name] = pod.socket
            self.kube.add_pod(name, number, pod)
        self.apps[name] = app
        self.relations.append(
            RelationRecord(self._take_id(), {app.name: "trino-peers"}, "trino_peers")
        )
        return app

    def remote_app(self, name: str, units: int = 1) -> App:
        app = App(name, remote=True)
        app.units = [Unit(app, n, None) for n in range(units)]
        self.apps[name] = app
        return app

    def integrate(
        self, a: str, endpoint_a: str, b: str, endpoint_b: str, interface: str
    ) -> RelationRecord:
        """`juju integrate`: relation-created on both sides, then joined and changed per unit.

        juju/juju worker/uniter/relation/resolver.go (nextHookForRelation): created
        first; then relation-joined for each remote unit not yet a member, each
        followed at once by relation-changed (ChangedPending).
        """
        relation = RelationRecord(self._take_id(), {a: endpoint_a, b: endpoint_b}, interface)
        for app in (a, b):
            relation.app_data[app] = {}
            for unit in self.apps[app].units:
                relation.unit_data[unit.name] = {}
        self.relations.append(relation)
        for unit in self._charm_units(a, b):
            self.run(unit, lambda ctx, rel: ctx.on.relation_created(rel), relation)
        for unit in self._charm_units(a, b):
            self._join_all(unit, relation)
        return relation

    def remove_relation(self, relation: RelationRecord) -> None:
        """`juju remove-relation`: departed for each remote unit, then broken, on both sides.

        juju/juju worker/uniter/relation/statetracker.go (SynchronizeScopes: the relation
        is dying) and relation/resolver.go (nextHookForRelation: one relation-departed
        per known member, then relation-broken).
        """
        for unit in self._charm_units(*relation.endpoints):
            self._depart_all(unit, relation)
            self.run(unit, lambda ctx, rel: ctx.on.relation_broken(rel), relation)
        self.relations.remove(relation)

    def remove_unit(self, unit: Unit) -> Deletion:
        """`juju remove-unit` (scale down) of a unit: its teardown, then its pod deleted.

        juju/juju worker/uniter/resolver.go (nextOp, life Dying: every relation is
        broken first, then stop, then remove), worker/uniter/relation/resolver.go
        (processRelationSnapshot: a dying unit sees its relations broken; departed
        for each member; relation-broken only when not a peer relation; peer relations
        last), worker/caasapplicationprovisioner/ops.go (reconcileDeadUnitScale: the
        StatefulSet shrinks only once the unit is dead, then Kubernetes deletes its
        pod) and worker/uniter/leadership/resolver.go (a dying leader resigns).
        """
        app = unit.app
        mine = [r for r in self.relations if app.name in r.endpoints]
        for relation in sorted(mine, key=lambda r: r.peer):
            self._depart_all(unit, relation, dying=True)
            if not relation.peer:
                self.run(unit, lambda ctx, rel: ctx.on.relation_broken(rel), relation)
            for other in self._charm_units(*relation.endpoints):
                if other is not unit and unit.name in relation.joined.get(other.name, set()):
                    self._depart(other, relation, unit)
        self.run(unit, lambda ctx, _: ctx.on.stop())
        self.run(unit, lambda ctx, _: ctx.on.remove())
        was_leader = unit.number == app.leader
        app.units.remove(unit)
        assert unit.pod is not None
        # The unit is dead: the caasunitterminationworker runs no hook on SIGTERM then
        # (juju/juju internal/worker/caasunitterminationworker/worker.go, WillRestart false).
        deletion = self.kube.delete_pod(unit.pod.name)
        if was_leader and app.units:
            self.elect(app.units[0])
        return deletion

    def churn(self, unit: Unit) -> Deletion:
        """Kubernetes deletes a unit's pod and makes it again; the unit stays.

        juju/juju internal/worker/caasunitterminationworker/worker.go (SIGTERM:
        UnitTerminating says the unit will restart, so the uniter runs `stop`) while
        the kubelet stops the containers; then the new pod's hooks (`NEW_POD_HOOKS`).
        """
        assert unit.pod is not None
        record = self.kube.pods[unit.pod.name]
        deletion = self.kube.delete_pod(unit.pod.name, lambda: self._stop_on_sigterm(unit))
        self._start_again(unit, self.kube.recreate_pod(record))
        return deletion

    def _converge(self, app_name: str) -> list[tuple[str, int]]:
        """Kubernetes rolls the pods once the template changed (a patch by the charm or Juju).

        The StatefulSet controller acts at once; here the roll starts when the hook
        that patched has ended (the hooks of the pods it makes are part of it).
        Returns (pod, grace) of each deletion.
        """
        if self._rolling or not self.kube.outdated(app_name):
            return []
        units = {unit.pod.name: unit for unit in self.apps[app_name].units if unit.pod}
        self._rolling = True
        try:
            deleted = self.kube.roll(
                app_name,
                on_sigterm=lambda record: self._stop_on_sigterm(units[record.pod.name]),
                on_new_pod=lambda record: self._start_again(units[record.pod.name], record),
            )
        finally:
            self._rolling = False
        self.rolls.append((app_name, deleted))
        return deleted

    def refresh(self, app_name: str) -> list[tuple[str, int]]:
        """`juju refresh`: Juju re-applies its pod template, and the pods roll.

        juju/juju worker/caasapplicationprovisioner/ops.go (appAlive: the charm's
        modified version changes, so Ensure runs) and caas/kubernetes/provider/
        application/application.go: the template is Juju's again (grace 30 s).
        Each old pod runs `stop` as it goes; each new pod runs the churn sequence
        (juju/juju worker/uniter/remotestate/watcher.go: a sidecar unit upgrades only
        in the pod made for the new charm). Returns (pod, grace) of each deletion.
        """
        self.kube.juju_apply(app_name, refresh=True)
        return self._converge(app_name)

    def elect(self, unit: Unit) -> None:
        """Leadership moves to ``unit``: the old leader runs nothing, the new one leader-elected.

        juju/juju worker/uniter/leadership/resolver.go and operation/leader.go
        (acceptLeadership queues leader-elected; resignLeadership runs no hook).
        """
        unit.app.leader = unit.number
        self.run(unit, lambda ctx, _: ctx.on.leader_elected())

    def add_secret(self, owner: str, content: dict[str, str], grant_to: str) -> str:
        """A secret another application (or the operator) owns and granted to `grant_to`."""
        secret = testing.Secret(content)
        self.secrets[secret.id] = SecretRecord(owner, dict(content), "app", grants={0: {grant_to}})
        return secret.id

    def set_secret(self, secret_id: str, content: dict[str, str]) -> None:
        """`juju update-secret`: a new revision; observers hear of it through `settle`."""
        self.secrets[secret_id].publish(content)

    def config(self, app: str, **values: Any) -> None:
        self.apps[app].config.update(values)
        for unit in self.apps[app].units:
            self.run(unit, lambda ctx, _: ctx.on.config_changed())

    # Hooks.

    def run(
        self,
        unit: Unit,
        event: Callable[[testing.Context, Any], testing.context._Event],
        relation: RelationRecord | None = None,
        notices: list[testing.Notice] | None = None,
        *,
        joining: Unit | None = None,
        secret: str | None = None,
    ) -> testing.State:
        """Run one hook on `unit`: its state in, the real charm, its state out."""
        ctx = testing.Context(TrinoK8sCharm, app_name=unit.app.name, unit_id=unit.number)
        state_in = self._state_for(unit, notices, joining=joining)
        subject: Any = None  # what the hook is about: a relation or a secret
        if relation is not None:
            subject = next(r for r in state_in.relations if r.id == relation.id)
        elif secret is not None:
            subject = next(s for s in state_in.secrets if s.id == secret)
        assert unit.pod is not None
        hook = event(ctx, subject)
        self.hooks.append((unit.name, hook.name))
        with _hook_env(self.kube.kubeconfig(unit.app.name)), inside(unit.pod.netns):
            state_out = ctx.run(hook, state_in)
        self._absorb(unit, state_out)
        unit.state = state_out
        unit.seen = self._view(unit)
        self._converge(unit.app.name)
        return state_out

    def action(
        self, unit: Unit, action: str, params: dict[str, Any] | None = None
    ) -> testing.ActionFailed | dict[str, Any]:
        """Run an action; its results, or the ActionFailed it ended with."""
        ctx = testing.Context(TrinoK8sCharm, app_name=unit.app.name, unit_id=unit.number)
        state_in = self._state_for(unit)
        assert unit.pod is not None
        try:
            with _hook_env(self.kube.kubeconfig(unit.app.name)), inside(unit.pod.netns):
                state_out = ctx.run(ctx.on.action(action, params=params or {}), state_in)
        except testing.ActionFailed as failure:
            self._absorb(unit, failure.state)
            unit.state = failure.state
            return failure
        self._absorb(unit, state_out)
        unit.state = state_out
        return dict(ctx.action_results or {})

    def settle(self, rounds: int = 8) -> None:
        """Deliver what Juju would until every unit has seen it all.

        relation-joined for members a unit has not met, relation-changed for changed
        databags, secret-changed for new revisions an observer has not been told of
        (juju/juju worker/uniter/secrets/resolver.go: the consumed revision differs
        from the newest), secret-remove to owners for obsolete revisions (the same
        resolver, ObsoleteSecretRevisions).
        """
        for _ in range(rounds):
            units = [u for a in self.apps.values() if not a.remote for u in a.units]
            delivered = [self._deliver(unit) for unit in units if unit.state is not None]
            if not any(delivered):
                return

    def _deliver(self, unit: Unit) -> bool:
        """One hook for what ``unit`` has not seen yet; False when it has seen it all."""
        if self._join_pending(unit) or self._secret_news(unit):
            return True
        if unit.seen == self._view(unit):
            return False
        changed = self._changed_relation(unit)
        members = sorted(changed.joined.get(unit.name, set())) if changed else []
        if changed is not None and members:
            number = int(members[0].rpartition("/")[2])
            self.run(
                unit,
                lambda ctx, rel: ctx.on.relation_changed(rel, remote_unit=number),
                relation=changed,
            )
        else:  # a secret, or data of a relation with no member left (not modelled)
            self.run(unit, lambda ctx, _: ctx.on.update_status())
        return True

    def tick(self, *apps: str) -> None:
        """One update-status on every unit (Juju's periodic hook)."""
        for name in apps or [n for n, a in self.apps.items() if not a.remote]:
            for unit in self.apps[name].units:
                self.run(unit, lambda ctx, _: ctx.on.update_status())

    def deliver_notices(self, unit: Unit) -> list[testing.State]:
        """What Juju does with custom notices: a pebble-custom-notice hook for each new one."""
        assert unit.pod is not None
        client = ops.pebble.Client(socket_path=unit.pod.socket)
        found = client.get_notices(types=[ops.pebble.NoticeType.CUSTOM])
        after = unit.notices_after
        new = sorted(
            (n for n in found if after is None or n.last_repeated > after),
            key=lambda n: n.last_repeated,
        )
        states = []
        for found_notice in new:
            notice = testing.Notice(
                found_notice.key,
                id=found_notice.id,
                user_id=found_notice.user_id,
                type=found_notice.type,
                first_occurred=found_notice.first_occurred,
                last_occurred=found_notice.last_occurred,
                last_repeated=found_notice.last_repeated,
                occurrences=found_notice.occurrences,
                last_data=found_notice.last_data,
            )
            container = testing.Container("trino", can_connect=True, notices=[notice])
            states.append(
                self.run(
                    unit,
                    lambda ctx, _, c=container, n=notice: ctx.on.pebble_custom_notice(c, n),
                    notices=[notice],
                )
            )
            unit.notices_after = found_notice.last_repeated
        return states

    # Sequences the hooks above are made of.

    def _charm_units(self, *apps: str) -> list[Unit]:
        return [u for a in apps if not self.apps[a].remote for u in self.apps[a].units]

    def _remote_units(self, unit: Unit, relation: RelationRecord) -> list[Unit]:
        """The units on the other side of ``relation`` from ``unit`` (peers: the others)."""
        other = self.apps[relation.other(unit.app.name)]
        return [u for u in other.units if u is not unit]

    def _join_all(self, unit: Unit, relation: RelationRecord) -> None:
        for remote in self._remote_units(unit, relation):
            self._join(unit, relation, remote)

    def _join(self, unit: Unit, relation: RelationRecord, remote: Unit) -> None:
        self.run(
            unit,
            lambda ctx, rel: ctx.on.relation_joined(rel, remote_unit=remote.number),
            relation,
            joining=remote,
        )
        relation.joined.setdefault(unit.name, set()).add(remote.name)
        self.run(
            unit,
            lambda ctx, rel: ctx.on.relation_changed(rel, remote_unit=remote.number),
            relation,
        )

    def _join_pending(self, unit: Unit) -> bool:
        """relation-joined (and -changed) for one unit this unit has not met yet."""
        for relation in self.relations:
            if unit.app.name not in relation.endpoints:
                continue
            met = relation.joined.get(unit.name, set())
            for remote in self._remote_units(unit, relation):
                # A charm unit enters the relation's scope once it has started (has run a
                # hook here); a remote application's units are there from the start.
                if remote.name not in met and (remote.app.remote or remote.state is not None):
                    self._join(unit, relation, remote)
                    return True
        return False

    def _depart_all(self, unit: Unit, relation: RelationRecord, dying: bool = False) -> None:
        for remote in self._remote_units(unit, relation):
            if remote.name in relation.joined.get(unit.name, set()):
                self._depart(unit, relation, remote, departing=unit if dying else remote)

    def _depart(
        self, unit: Unit, relation: RelationRecord, remote: Unit, departing: Unit | None = None
    ) -> None:
        departing = departing or remote
        # ops.testing names the departing unit <remote app>/<n>: right for peers and for
        # the remote side, not for the dying unit's own non-peer relations (see above).
        number = departing.number if departing.app is remote.app else None
        self.run(
            unit,
            lambda ctx, rel: ctx.on.relation_departed(
                rel, remote_unit=remote.number, departing_unit=number
            ),
            relation,
        )
        relation.joined.get(unit.name, set()).discard(remote.name)
        unit.seen = self._view(unit)  # the departed hook told it

    def _stop_on_sigterm(self, unit: Unit) -> None:
        """The old pod's `stop`, run while Kubernetes stops the pod's containers."""
        self.run(unit, lambda ctx, _: ctx.on.stop())

    def _start_again(self, unit: Unit, record: PodRecord) -> None:
        unit.pod = record.pod
        unit.notices_after = None  # a new Pebble: its notices start again
        for hook in NEW_POD_HOOKS:
            self.run(unit, hook)
            if record.revision != self.kube.current_revision(unit.app.name):
                break  # the charm patched the template: the controller deletes this pod now

    def _secret_news(self, unit: Unit) -> bool:
        """secret-changed to an observer of a newer revision; secret-remove to an owner."""
        for secret_id, record in self.secrets.items():
            if self._owns(unit, record):
                if unit.number != unit.app.leader and record.owner_kind == "app":
                    continue  # the application is an owner through its leader only
                for obsolete in record.obsolete():
                    record.removal_sent.add(obsolete)
                    self.run(
                        unit,
                        lambda ctx, s, r=obsolete: ctx.on.secret_remove(s, revision=r),
                        secret=secret_id,
                    )
                    return True
            elif (
                unit.name in record.tracking and record.notified.get(unit.name) != record.revision
            ):
                record.notified[unit.name] = record.revision
                if record.tracking[unit.name] != record.revision:  # not read with refresh yet
                    self.run(unit, lambda ctx, s: ctx.on.secret_changed(s), secret=secret_id)
                    return True
        return False

    # Building each unit's view of the model.

    def _take_id(self) -> int:
        self._next_relation += 1
        return self._next_relation

    def _owns(self, unit: Unit, record: SecretRecord) -> bool:
        return record.owner == (unit.app.name if record.owner_kind == "app" else unit.name)

    def _state_for(
        self,
        unit: Unit,
        notices: list[testing.Notice] | None = None,
        joining: Unit | None = None,
    ) -> testing.State:
        app = unit.app
        relations = []
        for record in self.relations:
            if app.name not in record.endpoints:
                continue
            # juju/juju worker/uniter/relation/state.go (UpdateStateForHook): a remote
            # unit is a member once its relation-joined has run, and no more once departed.
            met = set(record.joined.get(unit.name, set()))
            if joining is not None:
                met.add(joining.name)
            if record.peer:
                record.app_data.setdefault(app.name, {})
                record.unit_data.setdefault(unit.name, {})
                relations.append(
                    testing.PeerRelation(
                        "trino-peers",
                        id=record.id,
                        local_app_data=dict(record.app_data[app.name]),
                        local_unit_data=dict(record.unit_data[unit.name]),
                        peers_data={
                            other.number: dict(record.unit_data.setdefault(other.name, {}))
                            for other in app.units
                            if other is not unit and other.name in met
                        },
                    )
                )
                continue
            remote = self.apps[record.other(app.name)]
            relations.append(
                testing.Relation(
                    record.endpoints[app.name],
                    interface=record.interface,
                    id=record.id,
                    local_app_data=dict(record.app_data[app.name]),
                    local_unit_data=dict(record.unit_data[unit.name]),
                    remote_app_name=remote.name,
                    remote_app_data=dict(record.app_data[remote.name]),
                    remote_units_data={
                        other.number: dict(record.unit_data.get(other.name, {}))
                        for other in remote.units
                        if other.name in met
                    },
                )
            )
        secrets = []
        for secret_id, record in self.secrets.items():
            mine = self._owns(unit, record)
            granted = any(app.name in apps for apps in record.grants.values())
            if not (mine or granted):
                continue
            # juju/juju state/secrets.go (SaveSecretConsumer): an observer starts on the
            # newest revision and keeps it until it reads with --refresh.
            tracked = (
                record.revision if mine else record.tracking.setdefault(unit.name, record.revision)
            )
            secret = testing.Secret(
                record.revisions[tracked],
                latest_content=record.content,
                id=secret_id,
                owner=record.owner_kind if mine else None,  # type: ignore[arg-type]
                label=record.label if mine else record.labels.get(app.name),
                remote_grants={rid: apps for rid, apps in record.grants.items() if rid}
                if mine
                else {},
            )
            object.__setattr__(secret, "_tracked_revision", tracked)
            object.__setattr__(secret, "_latest_revision", record.revision)
            secrets.append(secret)
        previous = unit.state
        container = testing.Container("trino", can_connect=True, notices=notices or [])
        base = {
            "leader": unit.number == app.leader,
            "config": dict(app.config),
            "relations": relations,
            "secrets": secrets,
            "containers": {container},
            "model": testing.Model(MODEL, uuid="00000000-0000-4000-8000-00000000cafe"),
        }
        if previous is not None:
            return dataclasses.replace(previous, **base)
        return testing.State(**base)

    def _absorb(self, unit: Unit, state: testing.State) -> None:
        """Take what the hook wrote into the model: databags, secrets, grants, tracking."""
        app = unit.app
        leader = unit.number == app.leader
        for rel in state.relations:
            record = next((r for r in self.relations if r.id == rel.id), None)
            if record is None:
                continue
            if leader:
                record.app_data[app.name] = dict(rel.local_app_data)
            record.unit_data[unit.name] = dict(rel.local_unit_data)
        present = {secret.id for secret in state.secrets}
        for secret in state.secrets:
            if secret.owner is None:
                self._absorb_observed(unit, secret)
            else:
                self._absorb_owned(unit, secret)
        # What the unit (or, for app secrets, the leader) removed is gone.
        mine = {unit.name, *([app.name] if leader else [])}
        for secret_id in [i for i, r in self.secrets.items() if r.owner in mine]:
            if secret_id not in present:
                del self.secrets[secret_id]

    def _absorb_observed(self, unit: Unit, secret: testing.Secret) -> None:
        """An observer's label, and the revision it tracks now (it read with refresh)."""
        record = self.secrets.get(secret.id)
        if record is None:
            return
        if secret.label:
            record.labels[unit.app.name] = secret.label
        if secret._tracked_revision == record.revision:
            record.tracking[unit.name] = record.revision

    def _absorb_owned(self, unit: Unit, secret: testing.Secret) -> None:
        owner = unit.app.name if secret.owner == "app" else unit.name
        content = dict(secret.latest_content)
        record = self.secrets.get(secret.id)
        if record is None:
            record = SecretRecord(owner, content, str(secret.owner), secret.label)
            self.secrets[secret.id] = record
        elif content != record.content:
            record.publish(content)
        record.label = secret.label
        for rid, grantees in secret.remote_grants.items():
            record.grants[rid] = set(grantees)

    def _view(self, unit: Unit) -> str:
        """What a unit's hooks depend on from others: remote databags and secret revisions."""
        state = self._state_for(unit)
        view = {
            "relations": sorted(
                (
                    r.id,
                    json.dumps(
                        [
                            getattr(r, "remote_app_data", {}),
                            getattr(r, "remote_units_data", {}),
                            getattr(r, "peers_data", {}),
                            r.local_app_data,
                        ],
                        sort_keys=True,
                    ),
                )
                for r in state.relations
            ),
            "secrets": sorted((s.id, self.secrets[s.id].revision) for s in state.secrets),
        }
        return json.dumps(view, sort_keys=True, default=str)

    def _changed_relation(self, unit: Unit) -> RelationRecord | None:
        """The first relation whose data changed since the unit's last hook (None: a secret)."""
        if unit.state is None:
            return None
        before = {r.id: r for r in unit.state.relations}
        after = self._state_for(unit)
        for rel in after.relations:
            old = before.get(rel.id)
            fields = ("remote_app_data", "remote_units_data", "peers_data", "local_app_data")
            if old is None or any(getattr(old, f, None) != getattr(rel, f, None) for f in fields):
                return next(r for r in self.relations if r.id == rel.id)
        return None


@contextlib.contextmanager
def _hook_env(kubeconfig: str) -> Iterator[None]:
    """One hook at a time, with the application's service account as KUBECONFIG.

    ops.testing sets the hook's JUJU_* variables in the process environment, so two
    hooks must never overlap (a pod's `stop` runs in a thread while its pod goes).
    """
    with _HOOK_LOCK:
        before = os.environ.get("KUBECONFIG")
        os.environ["KUBECONFIG"] = kubeconfig
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = before
