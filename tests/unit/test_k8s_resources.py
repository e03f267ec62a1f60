"""Workload resources: patched onto the StatefulSet, or a status naming `juju trust`."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx2 as httpx
import lightkube
import pytest
from lightkube.core.exceptions import ApiError, ConfigError
from lightkube.models.apps_v1 import StatefulSetSpec
from lightkube.models.core_v1 import (
    Container,
    PodSpec,
    PodTemplateSpec,
    ResourceRequirements,
    ServiceSpec,
)
from lightkube.models.meta_v1 import LabelSelector
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import Service
from lightkube.types import PatchType
from ops import testing


@dataclasses.dataclass
class FakeKubernetes:
    """The Kubernetes API as lightkube.Client sees it: one StatefulSet."""

    resources: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    grace: int = 30  # Juju's terminationGracePeriodSeconds
    min_ready: int | None = None  # Juju sets none
    selector: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"app.kubernetes.io/name": "trino-k8s"}
    )
    error: Exception | None = None
    patches: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    service_patches: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    clients: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __call__(self, **kwargs: Any) -> FakeKubernetes:  # lightkube.Client(...)
        self.clients.append(kwargs)
        if isinstance(self.error, ConfigError):
            raise self.error
        return self

    def get(self, resource: type, name: str) -> StatefulSet | Service:
        if self.error:
            raise self.error
        if resource is Service:
            return Service(spec=ServiceSpec(selector=dict(self.selector)))
        assert resource is StatefulSet
        container = Container(name="trino", resources=ResourceRequirements(**self.resources))
        return StatefulSet(
            spec=StatefulSetSpec(
                selector=LabelSelector(),
                minReadySeconds=self.min_ready,
                serviceName=name,
                template=PodTemplateSpec(
                    spec=PodSpec(containers=[container], terminationGracePeriodSeconds=self.grace)
                ),
            )
        )

    def patch(self, resource: type, name: str, obj: dict[str, Any], patch_type: Any) -> None:
        assert patch_type == PatchType.STRATEGIC
        if resource is Service:
            self.service_patches.append(obj)
            self.selector.update(obj["spec"]["selector"])
            return
        self.patches.append(obj)
        self.grace = obj["spec"]["template"]["spec"].get(
            "terminationGracePeriodSeconds", self.grace
        )
        self.min_ready = obj["spec"].get("minReadySeconds", self.min_ready)


def api_error(code: int) -> ApiError:
    request = httpx.Request("GET", "https://k8s/apis/apps/v1/statefulsets/trino-k8s")
    response = httpx.Response(
        code, request=request, json={"code": code, "message": "forbidden", "reason": "Forbidden"}
    )
    return ApiError(request=request, response=response)


@pytest.fixture
def kubernetes(monkeypatch: pytest.MonkeyPatch) -> FakeKubernetes:
    fake = FakeKubernetes()
    monkeypatch.setattr(lightkube, "Client", fake)
    return fake


def patched_resources(kubernetes: FakeKubernetes) -> list[dict[str, Any]]:
    return [
        patch["spec"]["template"]["spec"]["containers"][0]["resources"]
        for patch in kubernetes.patches
    ]


def test_the_leader_patches_the_limits_onto_the_statefulset(ctx, container, trino, kubernetes):
    config = {"workload-memory-limit": "8Gi", "workload-cpu-request": "2"}

    state = ctx.run(
        ctx.on.config_changed(),
        testing.State(leader=True, containers={container}, config=config),
    )

    assert patched_resources(kubernetes) == [
        {"limits": {"memory": "8Gi"}, "requests": {"cpu": "2"}}
    ]
    assert kubernetes.clients[0]["field_manager"] == "trino-k8s"
    assert state.unit_status == testing.ActiveStatus()


def test_nothing_is_patched_when_the_statefulset_already_matches(
    ctx, container, trino, kubernetes
):
    kubernetes.resources = {"limits": {"memory": "8Gi"}}

    ctx.run(
        ctx.on.update_status(),
        testing.State(
            leader=True, containers={container}, config={"workload-memory-limit": "8Gi"}
        ),
    )

    assert kubernetes.patches == []


def peers(patched: bool) -> testing.PeerRelation:
    return testing.PeerRelation(
        "trino-peers", local_app_data={"patched_resources": json.dumps(patched)}
    )


def test_clearing_an_option_removes_that_resource(ctx, container, trino, kubernetes):
    kubernetes.resources = {"limits": {"memory": "8Gi", "cpu": "4"}}

    ctx.run(
        ctx.on.config_changed(),
        testing.State(
            leader=True,
            containers={container},
            relations={peers(True)},
            config={"workload-cpu-limit": "4"},
        ),
    )

    assert patched_resources(kubernetes) == [
        {"limits": {"memory": None, "cpu": "4"}, "requests": None}
    ]


def test_clearing_every_option_removes_the_resources_once(ctx, container, trino, kubernetes):
    kubernetes.resources = {"limits": {"memory": "8Gi"}}
    state = testing.State(leader=True, containers={container}, relations={peers(True)})

    state = ctx.run(ctx.on.config_changed(), state)

    assert patched_resources(kubernetes) == [{"limits": {"memory": None}, "requests": None}]
    relation = state.get_relations("trino-peers")[0]
    assert json.loads(relation.local_app_data["patched_resources"]) is False
    ctx.run(ctx.on.config_changed(), state)
    assert len(kubernetes.clients) == 1  # the flag is down: no more API calls


def test_the_leader_records_that_it_patched(ctx, container, trino, kubernetes):
    state = testing.State(
        leader=True,
        containers={container},
        relations={peers(False)},
        config={"workload-memory-limit": "8Gi"},
    )

    state = ctx.run(ctx.on.config_changed(), state)

    relation = state.get_relations("trino-peers")[0]
    assert json.loads(relation.local_app_data["patched_resources"]) is True


@pytest.mark.parametrize("event", ["update_status", "config_changed", "upgrade_charm"])
def test_without_options_hooks_never_call_kubernetes(ctx, container, trino, kubernetes, event):
    state = testing.State(leader=True, containers={container}, relations={peers(False)})

    ctx.run(getattr(ctx.on, event)(), state)

    assert kubernetes.clients == []


def test_only_the_leader_patches(ctx, container, trino, kubernetes):
    ctx.run(
        ctx.on.config_changed(),
        testing.State(containers={container}, config={"workload-memory-limit": "8Gi"}),
    )

    assert kubernetes.clients == []


@pytest.mark.parametrize(
    "error",
    [api_error(403), ConfigError("no kubeconfig")],
    ids=["forbidden", "outside-kubernetes"],
)
def test_missing_trust_blocks_and_names_the_fix(ctx, container, trino, kubernetes, error):
    kubernetes.error = error

    state = ctx.run(
        ctx.on.config_changed(),
        testing.State(
            leader=True, containers={container}, config={"workload-memory-limit": "8Gi"}
        ),
    )

    assert isinstance(state.unit_status, testing.BlockedStatus)
    assert "juju trust trino-k8s --scope=cluster" in state.unit_status.message
    # Trino itself still runs with its files.
    assert state.get_container("trino").service_statuses["trino"].value == "active"


def test_missing_trust_without_options_is_not_a_problem(ctx, container, trino, kubernetes):
    kubernetes.error = api_error(403)

    state = ctx.run(ctx.on.config_changed(), testing.State(leader=True, containers={container}))

    assert state.unit_status == testing.ActiveStatus()
    assert kubernetes.clients == []


def test_an_unreachable_api_is_reported(ctx, container, trino, kubernetes):
    kubernetes.error = httpx.ConnectError("connection refused")

    state = ctx.run(
        ctx.on.config_changed(),
        testing.State(leader=True, containers={container}, config={"workload-cpu-limit": "2"}),
    )

    assert state.unit_status == testing.BlockedStatus(
        "Kubernetes: the Kubernetes API did not answer: connection refused"
    )


@pytest.fixture
def kubernetes_calls() -> None:
    """Here the real patching code runs, against the fake client above."""


@pytest.fixture
def service_patches() -> None:
    """Here too the real code narrows the Service, against the fake client above."""


# Juju re-applies its template (grace 30 s) on a refresh, trust or constraints change.


def worker_peers(grace: int) -> testing.PeerRelation:
    return testing.PeerRelation(
        "trino-peers", local_app_data={"patched_grace_seconds": json.dumps(grace)}
    )


WORKER = {"charm-function": "worker"}
FULL_GRACE = 2 * 120 + 30


def test_a_workers_leader_patches_the_grace_once(ctx, container, trino, kubernetes):
    state = testing.State(
        leader=True, containers={container}, relations={worker_peers(0)}, config=WORKER
    )

    state = ctx.run(ctx.on.config_changed(), state)
    ctx.run(ctx.on.update_status(), state)

    grace = [
        p["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] for p in kubernetes.patches
    ]
    assert grace == [FULL_GRACE]
    # A refresh's rolling update waits for a new worker's Trino before the next drain.
    assert [p["spec"]["minReadySeconds"] for p in kubernetes.patches] == [30]
    assert len(kubernetes.clients) == 1  # recorded: the next hooks call no API


@pytest.mark.parametrize("leader", [True, False], ids=["leader", "any-unit"])
def test_upgrade_charm_patches_again_what_juju_reset(ctx, container, trino, kubernetes, leader):
    """The first hook of every pod Juju's template makes: before its Trino starts."""
    kubernetes.grace = 30  # Juju's template again, though the record says it was patched
    state = testing.State(
        leader=leader,
        containers={container},
        relations={worker_peers(FULL_GRACE)},
        config=WORKER,
    )

    ctx.run(ctx.on.upgrade_charm(), state)

    assert [
        p["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] for p in kubernetes.patches
    ] == [FULL_GRACE]


def test_upgrade_charm_leaves_a_template_that_still_matches(ctx, container, trino, kubernetes):
    kubernetes.grace = FULL_GRACE
    kubernetes.min_ready = 30
    state = testing.State(
        containers={container}, relations={worker_peers(FULL_GRACE)}, config=WORKER
    )

    ctx.run(ctx.on.upgrade_charm(), state)

    assert len(kubernetes.clients) == 1  # it looked
    assert kubernetes.patches == []  # and did not roll the pods again


# The application's Service: clients reach the serving coordinator only.


def coordinators(ctx, container, trino, *, peers_data=None, leader=True, **app_data):
    relation = testing.PeerRelation(
        "trino-peers",
        local_app_data={k: json.dumps(v) for k, v in app_data.items()},
        peers_data=peers_data if peers_data is not None else {1: {}},
    )
    return testing.State(leader=leader, containers={container}, relations={relation})


def serve(ctx, container, trino, state) -> testing.State:
    state = ctx.run(ctx.on.pebble_ready(container), state)
    return ctx.run(ctx.on.update_status(), state)  # Trino answers: it serves


def test_a_serving_leader_with_a_standby_narrows_the_service_to_its_pod(
    ctx, container, trino, kubernetes
):
    state = serve(ctx, container, trino, coordinators(ctx, container, trino))

    assert kubernetes.service_patches == [
        {"spec": {"selector": {"statefulset.kubernetes.io/pod-name": "trino-k8s-0"}}}
    ]
    relation = state.get_relations("trino-peers")[0]
    assert json.loads(relation.local_app_data["service_pod"]) == "trino-k8s-0"
    assert state.unit_status == testing.ActiveStatus()
    ctx.run(ctx.on.update_status(), state)
    assert len(kubernetes.service_patches) == 1  # recorded: no API call per hook


def test_a_lone_unit_needs_no_narrowing_nor_trust(ctx, container, trino, kubernetes):
    kubernetes.error = api_error(403)

    state = serve(ctx, container, trino, coordinators(ctx, container, trino, peers_data={}))

    assert kubernetes.clients == []
    assert state.unit_status == testing.ActiveStatus()


def test_a_new_leader_takes_the_service_over(ctx, container, trino, kubernetes):
    kubernetes.selector["statefulset.kubernetes.io/pod-name"] = "trino-k8s-1"
    state = coordinators(ctx, container, trino, service_pod="trino-k8s-1")

    serve(ctx, container, trino, state)

    assert kubernetes.selector == {
        "app.kubernetes.io/name": "trino-k8s",
        "statefulset.kubernetes.io/pod-name": "trino-k8s-0",
    }


def test_standbys_without_trust_block_on_the_leader_and_name_the_fix(
    ctx, container, trino, kubernetes
):
    kubernetes.error = api_error(403)

    state = serve(ctx, container, trino, coordinators(ctx, container, trino))

    assert state.unit_status == testing.BlockedStatus(
        "Kubernetes: not allowed to patch the Service; run `juju trust trino-k8s --scope=cluster`"
    )
    # The leader's Trino keeps serving meanwhile.
    assert state.get_container("trino").service_statuses["trino"].value == "active"


def test_a_standby_never_touches_the_service(ctx, container, trino, kubernetes):
    serve(ctx, container, trino, coordinators(ctx, container, trino, leader=False))

    assert kubernetes.clients == []
