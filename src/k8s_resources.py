"""Kubernetes resources (requests and limits) of the ``trino`` container.

Juju creates the StatefulSet; the charm patches the container's resources onto
its pod template, which rolls the pods. That needs `juju trust`. lightkube is
imported only here, and this module is used only when a `workload-*` option is
set or has just changed, so most hooks never pay for the import.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

CONTAINER = "trino"


class ResourcePatchError(Exception):
    """The resources could not be applied; the message says what to do."""


def _fix_hint(app_name: str) -> str:
    return f"run `juju trust {app_name} --scope=cluster`"


def apply_resources(
    app_name: str,
    namespace: str,
    desired: dict[str, dict[str, str]],
    termination_grace: int | None = None,
) -> bool:
    """Make the StatefulSet's trino container have exactly ``desired`` resources.

    With ``termination_grace``, the pods also get that terminationGracePeriodSeconds
    (a draining worker needs it). Returns True when a patch was sent (Kubernetes
    then rolls the pods), False when everything already matched. Raises
    ResourcePatchError otherwise.
    """
    import httpx2 as httpx  # noqa: PLC0415  (lightkube 1.x HTTP client)
    from lightkube import Client  # noqa: PLC0415  (heavy: see module docstring)
    from lightkube.core.exceptions import ApiError, ConfigError  # noqa: PLC0415
    from lightkube.resources.apps_v1 import StatefulSet  # noqa: PLC0415
    from lightkube.types import PatchType  # noqa: PLC0415

    try:
        client = Client(namespace=namespace, field_manager=app_name)
        statefulset = client.get(StatefulSet, name=app_name)
        current = _current_resources(statefulset)
        pod_spec = statefulset.spec.template.spec if statefulset.spec else None
        current_grace = pod_spec.terminationGracePeriodSeconds if pod_spec else None
        grace_due = termination_grace is not None and termination_grace != current_grace
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
        if grace_due:
            template_spec["terminationGracePeriodSeconds"] = termination_grace
        client.patch(
            StatefulSet,
            name=app_name,
            obj={"spec": {"template": {"spec": template_spec}}},
            patch_type=PatchType.STRATEGIC,
        )
    except ConfigError as error:
        raise ResourcePatchError(
            f"no access to the Kubernetes API ({error}); {_fix_hint(app_name)}"
        ) from error
    except ApiError as error:
        if error.status.code in (401, 403):
            raise ResourcePatchError(
                f"not allowed to patch the StatefulSet; {_fix_hint(app_name)}"
            ) from error
        raise ResourcePatchError(
            f"Kubernetes refused the resources: {error.status.message}"
        ) from error
    except httpx.HTTPError as error:
        raise ResourcePatchError(f"the Kubernetes API did not answer: {error}") from error
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
