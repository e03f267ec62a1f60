"""The imperative shell around the Trino container: files, Pebble, health.

It changes only what differs from the plan, and restarts Trino only when a file
or the layer really changed, so a hook with nothing to do writes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ops

from core.observability import LOGGING_LAYER, logging_layer
from core.plan import CHECK, ETC, HTTP_PORT, SERVICE, Plan

if TYPE_CHECKING:
    from core.observability import Topology
    from core.plan import File

logger = logging.getLogger(__name__)

INFO_URL = f"http://localhost:{HTTP_PORT}/v1/info"


@dataclasses.dataclass(frozen=True)
class TrinoInfo:
    """What Trino's public ``/v1/info`` endpoint says about the node."""

    starting: bool
    version: str


def probe(url: str = INFO_URL, timeout: float = 2.0) -> TrinoInfo | None:
    """Ask Trino whether it has finished starting; None when it does not answer.

    The charm and workload containers share the pod's network, so localhost
    reaches Trino. ``/v1/info`` is public: no credentials are sent.
    """
    import urllib.request  # noqa: PLC0415  (only hooks that report status need it)

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only)
            info = json.load(response)
    except (OSError, ValueError) as error:
        logger.debug("Trino did not answer on %s: %s", url, error)
        return None
    return TrinoInfo(
        starting=bool(info.get("starting", True)),
        version=str(info.get("nodeVersion", {}).get("version", "")),
    )


class Workload:
    """The ``trino`` container as the charm sees it."""

    def __init__(self, container: ops.Container):
        self.container = container

    def apply(self, plan: Plan) -> bool:
        """Make the container match ``plan``; True if Trino was (re)started."""
        files_changed = self._sync_files(plan)
        layer_changed = self._sync_layer(plan.layer)
        if not self.is_running():
            logger.info("starting Trino")
            self.container.replan()
            return True
        if files_changed or layer_changed:
            logger.info("restarting Trino: %s", ", ".join(files_changed) or "Pebble layer")
            self.container.restart(SERVICE)
            return True
        return False

    def is_running(self) -> bool:
        """Whether Pebble has the trino service up."""
        service = self.container.get_services(SERVICE).get(SERVICE)
        return service is not None and service.is_running()

    def service_status(self) -> str | None:
        """Pebble's word for the service (active, backoff, error...), if defined."""
        service = self.container.get_services(SERVICE).get(SERVICE)
        return str(getattr(service.current, "value", service.current)) if service else None

    def restart(self) -> None:
        """Restart Trino now (the `restart` action)."""
        self.container.restart(SERVICE)

    def check_failures(self) -> int:
        """How many times in a row the readiness check has failed."""
        check = self.container.get_checks(CHECK).get(CHECK)
        return check.failures if check else 0

    def _sync_files(self, plan: Plan) -> list[str]:
        present = self._list(ETC, *plan.exclusive_dirs)
        changed = []
        for path, file in sorted(plan.files.items()):
            if self._differs(path, file, present.get(path)):
                self.container.push(
                    path,
                    file.content,
                    make_dirs=True,
                    permissions=file.mode,
                    user="trino",
                    group="trino",
                )
                changed.append(path)
        for path, info in sorted(present.items()):
            in_exclusive_dir = any(path.startswith(f"{d}/") for d in plan.exclusive_dirs)
            if (
                in_exclusive_dir
                and path not in plan.files
                and info.type == ops.pebble.FileType.FILE
            ):
                self.container.remove_path(path)
                changed.append(path)
        return changed

    def _list(self, *directories: str) -> dict[str, ops.pebble.FileInfo]:
        found = {}
        for directory in directories:
            try:
                found.update({info.path: info for info in self.container.list_files(directory)})
            except ops.pebble.APIError as error:
                if error.code != 404:  # noqa: PLR2004  (a missing folder is simply empty)
                    raise
        return found

    def _differs(self, path: str, file: File, info: ops.pebble.FileInfo | None) -> bool:
        content = file.content.encode()
        if info is None or info.permissions != file.mode or info.size != len(content):
            return True
        with self.container.pull(path, encoding=None) as current:
            return current.read() != content

    def _sync_layer(self, layer: dict[str, Any]) -> bool:
        desired = ops.pebble.Layer(layer)  # type: ignore[arg-type]
        plan = self.container.get_plan()
        current_service = plan.services.get(SERVICE)
        current_check = plan.checks.get(CHECK)
        if (
            current_service is not None
            and current_check is not None
            and current_service.to_dict() == desired.services[SERVICE].to_dict()
            and current_check.to_dict() == desired.checks[CHECK].to_dict()
        ):
            return False
        self.container.add_layer(SERVICE, desired, combine=True)
        return True

    def forward_logs(self, endpoints: dict[str, str], topology: Topology) -> bool:
        """Make the log-forwarding layer match the Loki units; True if it changed.

        A layer of its own (`trino-logging`), so the main layer's comparison is
        untouched; Pebble applies log targets as soon as the plan changes, so
        Trino is never restarted for them. Without Loki it still looks at the
        plan: targets left by a removed relation must be switched off.
        """
        current = {
            name: target.to_dict()
            for name, target in self.container.get_plan().log_targets.items()
        }
        if not endpoints and not current:
            return False
        layer = logging_layer(endpoints, current, topology)
        wanted = layer.get("log-targets", {})
        if all(_same_target(current.get(name), target) for name, target in wanted.items()):
            return False
        logger.info("forwarding logs to %s", ", ".join(endpoints.values()) or "no Loki unit")
        self.container.add_layer(LOGGING_LAYER, layer, combine=True)  # type: ignore[arg-type]
        return True


def _same_target(current: Mapping[str, object] | None, wanted: Mapping[str, object]) -> bool:
    if current is None:
        return False
    keys = ("type", "location", "services", "labels")
    return all((current.get(key) or None) == (wanted.get(key) or None) for key in keys)
