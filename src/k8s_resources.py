"""What the charm patches onto the Kubernetes objects Juju made for the application.

- the StatefulSet's pod template: the ``trino`` container's resources and the pods'
  terminationGracePeriodSeconds (a draining worker needs more than Juju's 30 s);
  Kubernetes then rolls the pods;
- the application's Service: its selector narrowed to the serving coordinator's pod.

Both need `juju trust`. lightkube is imported only here, and this module is used only
when one of them is due, so most hooks never pay for the import.
"""

from __future__ import annotations

import logging

from core.rolling import MIN_READY_SECONDS

logger = logging.getLogger(__name__)

CONTAINER = "trino"


class ResourcePatchError(Exception):
    """The resources could not be applied; the message says what to do."""


def _fix_hint(app_name: str) -> str:
    return f"run `juju trust {app_name} --scope=cluster`"


def _client(app_name: str, namespace: str):
    from lightkube import Client  # noqa: PLC0415  (heavy: see module docstring)

    return Client(namespace=namespace, field_manager=app_name)


def _patch_error(error: Exception, app_name: str, what: str) -> ResourcePatchError:
    """The operator's words for a failed call: no API, no trust, or Kubernetes' reason."""
    from lightkube.core.exceptions import ApiError, ConfigError  # noqa: PLC0415

    if isinstance(error, ConfigError):
        return ResourcePatchError(
            f"no access to the Kubernetes API ({error}); {_fix_hint(app_name)}"
        )
    if isinstance(error, ApiError):
        if error.status.code in (401, 403):
            return ResourcePatchError(f"not allowed to patch the {what}; {_fix_hint(app_name)}")
        return ResourcePatchError(f"Kubernetes refused the {what} patch: {error.status.message}")
    return ResourcePatchError(f"the Kubernetes API did not answer: {error}")


# The label the StatefulSet controller gives each of its pods: the pod's own name
# (kubernetes pkg/controller/statefulset/stateful_set_utils.go, StatefulSetPodNameLabel).
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"


def select_pod(app_name: str, namespace: str, pod: str) -> bool:
    """Narrow the application's Service to ``pod``; True when a patch was sent.

    Juju's Service selects every pod of the application; the selector keeps
    Juju's labels and adds the pod's name, so only that pod gets clients.
    """
    import httpx2 as httpx  # noqa: PLC0415
    from lightkube.core.exceptions import ApiError, ConfigError  # noqa: PLC0415
    from lightkube.resources.core_v1 import Service  # noqa: PLC0415
    from lightkube.types import PatchType  # noqa: PLC0415

    try:
        client = _client(app_name, namespace)
        service = client.get(Service, name=app_name)
        selector = (service.spec.selector if service.spec else None) or {}
        if selector.get(POD_NAME_LABEL) == pod:
            return False
        client.patch(
            Service,
            name=app_name,
            obj={"spec": {"selector": {POD_NAME_LABEL: pod}}},
            patch_type=PatchType.STRATEGIC,
        )
    except (ConfigError, ApiError, httpx.HTTPError) as error:
        raise _patch_error(error, app_name, "Service") from error
    logger.info("the %s Service now sends clients to %s only", app_name, pod)
    return True


def apply_resources(
    app_name: str,
    namespace: str,
    desired: dict[str, dict[str, str]],
    termination_grace: int | None = None,
) -> bool:
    """Make the StatefulSet's trino container have exactly ``desired`` resources.

    With ``termination_grace`` (a worker), the pods also get that
    terminationGracePeriodSeconds (a draining worker needs it), and a rolling update
    waits MIN_READY_SECONDS of a new pod's readiness before it takes the next one.
    Returns True when a patch was sent (Kubernetes then rolls the pods), False when
    everything already matched. Raises ResourcePatchError otherwise.
    """
    import httpx2 as httpx  # noqa: PLC0415  (lightkube 1.x HTTP client)
    from lightkube.core.exceptions import ApiError, ConfigError  # noqa: PLC0415
    from lightkube.resources.apps_v1 import StatefulSet  # noqa: PLC0415
    from lightkube.types import PatchType  # noqa: PLC0415

    try:
        client = _client(app_name, namespace)
        statefulset = client.get(StatefulSet, name=app_name)
        current = _current_resources(statefulset)
        pod_spec = statefulset.spec.template.spec if statefulset.spec else None
        current_grace = pod_spec.terminationGracePeriodSeconds if pod_spec else None
        min_ready = statefulset.spec.minReadySeconds if statefulset.spec else None
        grace_due = termination_grace is not None and (
            termination_grace != current_grace or min_ready != MIN_READY_SECONDS
        )
        if current == desired and not grace_due:
            return False
        # A strategic merge patch merges maps: keys we no longer want are nulled.
        patch = {
            section: (
                {key: desired.get(section, {}).get(key) for key in keys}
                if (keys := {*current.get(section, {}), *desired.get(section, {})})
                else None
            )
            for section in ("limits", "requests")
        }
        template_spec: dict = {"containers": [{"name": CONTAINER, "resources": patch}]}
        spec: dict = {"template": {"spec": template_spec}}
        if grace_due:
            template_spec["terminationGracePeriodSeconds"] = termination_grace
            spec["minReadySeconds"] = MIN_READY_SECONDS
        client.patch(
            StatefulSet, name=app_name, obj={"spec": spec}, patch_type=PatchType.STRATEGIC
        )
    except (ConfigError, ApiError, httpx.HTTPError) as error:
        raise _patch_error(error, app_name, "StatefulSet") from error
    logger.info("patched resources of %s/%s: %s", app_name, CONTAINER, desired)
    return True


def _current_resources(statefulset) -> dict[str, dict[str, str]]:
    spec = statefulset.spec.template.spec if statefulset.spec else None
    for container in spec.containers if spec else []:
        if container.name == CONTAINER and container.resources:
            return {
                section: dict(values)
                for section in ("limits", "requests")
                if (values := getattr(container.resources, section))
            }
    return {}
