"""A small stand-in for Juju: it runs the real charm's hooks against real Pebbles.

Each hook is a `ops.testing` run of `TrinoK8sCharm`, with two differences from the
unit tests: the `trino` container's Pebble client is a real `ops.pebble.Client` on
the node's Pebble socket (files, layers, services, checks and exec all go to the
real daemon), and the hook runs inside the node's network namespace, so what the
charm asks `localhost:8080` (probe, drain) reaches the node's real Trino.

Between hooks this model does what Juju would: it keeps each unit's state, shares
application databags and secrets between the units that may see them, and fires
`relation-changed` / `secret-changed` on the units whose view changed (`settle`).
The one thing not real is Kubernetes: the StatefulSet patch is recorded, not sent.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable
from typing import Any

import ops
import pytest
from netlab import Pod, inside
from ops import testing
from scenario import mocking

import k8s_resources
from charm import TrinoK8sCharm

MODEL = "live"


@dataclasses.dataclass
class SecretRecord:
    owner: str  # application name (app secrets) or unit name (unit secrets)
    content: dict[str, str]
    owner_kind: str  # "app" or "unit"
    label: str | None = None
    revision: int = 1
    grants: dict[int, set[str]] = dataclasses.field(default_factory=dict)  # relation -> apps
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # observer app -> label


@dataclasses.dataclass
class RelationRecord:
    id: int
    endpoints: dict[str, str]  # application -> its endpoint
    interface: str
    app_data: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    unit_data: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

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


class Juju:
    """Applications, units, relations and secrets of one model, and hooks run on them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.apps: dict[str, App] = {}
        self.relations: list[RelationRecord] = []
        self.secrets: dict[str, SecretRecord] = {}
        self.k8s_patches: list[tuple] = []
        self.hooks: list[tuple[str, str]] = []  # (unit, event) in the order they ran
        self._next_relation = 1
        self._pebble_for: dict[str, str] = {}
        monkeypatch.setattr(k8s_resources, "apply_resources", self._record_patch)
        original = mocking._MockModelBackend.get_pebble
        pebble_for = self._pebble_for

        def get_pebble(backend: mocking._MockModelBackend, socket_path: str) -> ops.pebble.Client:
            unit = backend.unit_name
            if unit in pebble_for:
                return ops.pebble.Client(socket_path=pebble_for[unit])
            return original(backend, socket_path)

        monkeypatch.setattr(mocking._MockModelBackend, "get_pebble", get_pebble)

    def _record_patch(self, *args: object) -> bool:
        self.k8s_patches.append(args)
        return True

    # The model.

    def deploy(self, name: str, pods: list[Pod], config: dict[str, Any] | None = None) -> App:
        app = App(name, dict(config or {}))
        for number, pod in enumerate(pods):
            unit = Unit(app, number, pod)
            app.units.append(unit)
            self._pebble_for[unit.name] = pod.socket
        self.apps[name] = app
        self.relate_peers(app)
        return app

    def remote_app(self, name: str, units: int = 1) -> App:
        app = App(name, remote=True)
        app.units = [Unit(app, n, None) for n in range(units)]
        self.apps[name] = app
        return app

    def relate_peers(self, app: App) -> None:
        self.relations.append(
            RelationRecord(self._take_id(), {app.name: "trino-peers"}, "trino_peers")
        )

    def integrate(
        self, a: str, endpoint_a: str, b: str, endpoint_b: str, interface: str
    ) -> RelationRecord:
        """Relate two applications; charm units see relation-created, -joined and -changed."""
        relation = RelationRecord(self._take_id(), {a: endpoint_a, b: endpoint_b}, interface)
        for app in (a, b):
            relation.app_data[app] = {}
            for unit in self.apps[app].units:
                relation.unit_data[unit.name] = {}
        self.relations.append(relation)
        for app in (a, b):
            if self.apps[app].remote:
                continue
            for unit in self.apps[app].units:
                for hook in ("relation_created", "relation_joined", "relation_changed"):
                    self.run(
                        unit, lambda ctx, rel, hook=hook: getattr(ctx.on, hook)(rel), relation
                    )
        return relation

    def remove_relation(self, relation: RelationRecord) -> None:
        for app in relation.endpoints:
            if not self.apps[app].remote:
                for unit in self.apps[app].units:
                    self.run(unit, lambda ctx, rel: ctx.on.relation_broken(rel), relation=relation)
        self.relations.remove(relation)

    def add_secret(self, owner: str, content: dict[str, str], grant_to: str) -> str:
        """A secret another application (or the operator) owns and granted to `grant_to`."""
        secret = testing.Secret(content)
        self.secrets[secret.id] = SecretRecord(owner, dict(content), "app", grants={0: {grant_to}})
        return secret.id

    def set_secret(self, secret_id: str, content: dict[str, str]) -> None:
        record = self.secrets[secret_id]
        record.content = dict(content)
        record.revision += 1

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
    ) -> testing.State:
        """Run one hook on `unit`: its state in, the real charm, its state out."""
        ctx = testing.Context(TrinoK8sCharm, app_name=unit.app.name, unit_id=unit.number)
        state_in = self._state_for(unit, notices)
        rel = None
        if relation is not None:
            rel = next(r for r in state_in.relations if r.id == relation.id)
        assert unit.pod is not None
        hook = event(ctx, rel)
        self.hooks.append((unit.name, hook.name))
        with inside(unit.pod.netns):
            state_out = ctx.run(hook, state_in)
        self._absorb(unit, state_out)
        unit.state = state_out
        unit.seen = self._view(unit)
        return state_out

    def action(
        self, unit: Unit, action: str, params: dict[str, Any] | None = None
    ) -> testing.ActionFailed | dict[str, Any]:
        """Run an action; its results, or the ActionFailed it ended with."""
        ctx = testing.Context(TrinoK8sCharm, app_name=unit.app.name, unit_id=unit.number)
        state_in = self._state_for(unit)
        assert unit.pod is not None
        try:
            with inside(unit.pod.netns):
                state_out = ctx.run(ctx.on.action(action, params=params or {}), state_in)
        except testing.ActionFailed as failure:
            self._absorb(unit, failure.state)
            unit.state = failure.state
            return failure
        self._absorb(unit, state_out)
        unit.state = state_out
        return dict(ctx.action_results or {})

    def settle(self, rounds: int = 8) -> None:
        """Deliver relation-changed and secret-changed until every unit has seen it all."""
        for _ in range(rounds):
            quiet = True
            for app in list(self.apps.values()):
                if app.remote:
                    continue
                for unit in app.units:
                    if unit.state is None or unit.seen == self._view(unit):
                        continue
                    quiet = False
                    changed = self._changed_relation(unit)
                    if changed is not None:
                        self.run(
                            unit, lambda ctx, rel: ctx.on.relation_changed(rel), relation=changed
                        )
                    else:
                        self.run(unit, lambda ctx, _: ctx.on.update_status())
            if quiet:
                return

    def tick(self, *apps: str) -> None:
        """One update-status on every unit (Juju's periodic hook)."""
        for name in apps or [n for n, a in self.apps.items() if not a.remote]:
            for unit in self.apps[name].units:
                self.run(unit, lambda ctx, _: ctx.on.update_status())

    # Building each unit's view of the model.

    def _take_id(self) -> int:
        self._next_relation += 1
        return self._next_relation

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

    def _state_for(self, unit: Unit, notices: list[testing.Notice] | None = None) -> testing.State:
        app = unit.app
        relations = []
        for record in self.relations:
            if app.name not in record.endpoints:
                continue
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
                            if other is not unit
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
                        other.number: dict(record.unit_data[other.name]) for other in remote.units
                    },
                )
            )
        secrets = []
        for secret_id, record in self.secrets.items():
            mine = record.owner == (app.name if record.owner_kind == "app" else unit.name)
            granted = any(app.name in apps for apps in record.grants.values())
            if not (mine or granted):
                continue
            secret = testing.Secret(
                record.content,
                id=secret_id,
                owner=record.owner_kind if mine else None,  # type: ignore[arg-type]
                label=record.label if mine else record.labels.get(app.name),
                remote_grants={rid: apps for rid, apps in record.grants.items() if rid}
                if mine
                else {},
            )
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
        """Take what the hook wrote into the model: databags, secrets, grants."""
        app = unit.app
        leader = unit.number == app.leader
        for rel in state.relations:
            record = next(r for r in self.relations if r.id == rel.id)
            if leader:
                record.app_data[app.name] = dict(rel.local_app_data)
            record.unit_data[unit.name] = dict(rel.local_unit_data)
        present = {secret.id for secret in state.secrets}
        for secret in state.secrets:
            if secret.owner is None:
                if secret.id in self.secrets and secret.label:
                    self.secrets[secret.id].labels[app.name] = secret.label
            else:
                self._absorb_owned(unit, secret)
        # What the unit (or, for app secrets, the leader) removed is gone.
        mine = {unit.name, *([app.name] if leader else [])}
        for secret_id in [i for i, r in self.secrets.items() if r.owner in mine]:
            if secret_id not in present:
                del self.secrets[secret_id]

    def _absorb_owned(self, unit: Unit, secret: testing.Secret) -> None:
        owner = unit.app.name if secret.owner == "app" else unit.name
        content = dict(secret.latest_content)
        record = self.secrets.get(secret.id)
        if record is None:
            record = SecretRecord(owner, content, str(secret.owner), secret.label)
            self.secrets[secret.id] = record
        elif content != record.content:
            record.content = content
            record.revision += 1
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
