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
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec, ResourceRequirements
from lightkube.models.meta_v1 import LabelSelector
from lightkube.resources.apps_v1 import StatefulSet
from ops import testing


@dataclasses.dataclass
class FakeKubernetes:
    """The Kubernetes API as lightkube.Client sees it: one StatefulSet."""

    resources: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    error: Exception | None = None
    patches: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    clients: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __call__(self, **kwargs: Any) -> FakeKubernetes:  # lightkube.Client(...)
        self.clients.append(kwargs)
        if isinstance(self.error, ConfigError):
            raise self.error
        return self

    def get(self, resource: type, name: str) -> StatefulSet:
        assert resource is StatefulSet
        if self.error:
            raise self.error
        container = Container(name="trino", resources=ResourceRequirements(**self.resources))
        return StatefulSet(
            spec=StatefulSetSpec(
                selector=LabelSelector(),
                serviceName=name,
                template=PodTemplateSpec(spec=PodSpec(containers=[container])),
            )
        )

    def patch(self, resource: type, name: str, obj: dict[str, Any], patch_type: Any) -> None:
        self.patches.append(obj)


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
        "workload resources: the Kubernetes API did not answer: connection refused"
    )


@pytest.fixture
def kubernetes_calls() -> None:
    """Here the real patching code runs, against the fake client above."""
