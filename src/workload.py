"""The imperative shell around the Trino container: files, Pebble, health.

It changes only what differs from the plan, and restarts Trino only when a file
or the layer really changed, so a hook with nothing to do writes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import ops

from core.catalogs import CONNECTORS, connectors_in
from core.observability import LOGGING_LAYER, logging_layer
from core.plan import (
    CHECK,
    CHECK_CHANGE,
    ETC,
    HTTP_PORT,
    PEBBLE,
    PEBBLE_SOCKET,
    RELOADED_FILES,
    SECRET,
    SERVICE,
    SHUTDOWN_FILES,
    File,
    Plan,
)
from core.shutdown import STOP_NOW, drain_request

if TYPE_CHECKING:
    from core.observability import Topology

logger = logging.getLogger(__name__)

BASE_URL = f"http://localhost:{HTTP_PORT}"
INFO_URL = f"{BASE_URL}/v1/info"
PLUGIN_DIR = "/usr/lib/trino/plugin"  # one folder per plugin of the image


class TrinoInfo(NamedTuple):
    """What Trino's public ``/v1/info`` endpoint says about the node."""

    starting: bool
    version: str
    state: str = "ACTIVE"  # SHUTTING_DOWN while a worker drains


def probe(url: str = INFO_URL, timeout: float = 2.0) -> TrinoInfo | None:
    """Ask Trino whether it has finished starting; None when it does not answer.

    The charm and workload containers share the pod's network, so localhost
    reaches Trino. ``/v1/info`` is public: no credentials are sent.
    """
    import urllib.request  # noqa: PLC0415  (only hooks that report status need it)

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only)
            info = json.load(response)
        with urllib.request.urlopen(f"{url}/state", timeout=timeout) as response:  # noqa: S310
            state = json.load(response)
    except (OSError, ValueError) as error:
        logger.debug("Trino did not answer on %s: %s", url, error)
        return None
    return TrinoInfo(
        starting=bool(info.get("starting", True)),
        version=str(info.get("nodeVersion", {}).get("version", "")),
        state=str(state),
    )


@dataclasses.dataclass(frozen=True)
class Credentials:
    """How the charm authenticates to its own Trino when authentication is on."""

    password: str = dataclasses.field(repr=False)
    base_url: str = BASE_URL  # https://<name the certificate covers>:8443 with HTTPS
    ca: str = ""  # PEM CA to verify Trino's certificate (HTTPS)
    # Without HTTPS, Trino accepts a password only from a TLS-terminating proxy.
    forwarded_https: bool = False


def drain(
    user: str,
    base_url: str = BASE_URL,
    timeout: float = 10.0,
    credentials: Credentials | None = None,
) -> str | None:
    """Ask a worker to shut down gracefully; None once it accepted, else why not.

    Trino then stops taking tasks, waits `shutdown.grace-period`, finishes what
    runs, waits the period again and exits. Pebble starts it again (with the
    files the charm has just written) unless told otherwise. With ``credentials``
    the request carries the charm user's password (HTTPS verified against the CA).
    """
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    headers = {"Content-Type": "application/json", "X-Trino-User": user}
    context = None
    if credentials is not None:
        import base64  # noqa: PLC0415

        base_url = credentials.base_url
        token = base64.b64encode(f"{user}:{credentials.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
        if credentials.forwarded_https:
            headers["X-Forwarded-Proto"] = "https"
        if credentials.ca:
            import ssl  # noqa: PLC0415

            context = ssl.create_default_context(cadata=credentials.ca)
    request = urllib.request.Request(  # noqa: S310 (http or https only)
        f"{base_url}/v1/info/state", data=b'"SHUTTING_DOWN"', method="PUT", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context):  # noqa: S310
            return None
    except urllib.error.HTTPError as error:
        return f"Trino refused to drain (HTTP {error.code})"
    except OSError as error:
        return f"Trino did not answer the drain request ({error})"


def with_drain_request(plan: Plan, user: str, credentials: Credentials | None) -> Plan:
    """A worker's plan plus the request its script drains it with on SIGTERM (0600)."""
    if credentials is None:
        files = drain_request(user, BASE_URL)
    else:
        files = drain_request(
            user,
            credentials.base_url,
            credentials.password,
            credentials.ca,
            credentials.forwarded_https,
        )
    return dataclasses.replace(
        plan, files={**plan.files, **{path: File(text, SECRET) for path, text in files.items()}}
    )


def needs_restart(changed: list[str]) -> list[str]:
    """The changes Trino takes only on a restart (it reloads some files by itself)."""
    unread = (*RELOADED_FILES, *SHUTDOWN_FILES, CHECK_CHANGE)
    return [change for change in changed if change not in unread]


_ERROR_LINE = re.compile(r"\b(ERROR|Exception|Error:)")
# What `pebble logs` puts before each line of the service's output.
_PEBBLE_PREFIX = re.compile(r"^\S+ \[[^\]]+\] ")
# Trino's "Configuration is invalid" record lists its errors on the lines below it.
_NUMBERED = re.compile(r"^\d+\) ")


def last_error_line(log: str) -> str:
    """The last line of a Trino log that reports an error, trimmed for a status message.

    Trino refuses a bad config.properties with one ERROR line, "Configuration is
    invalid", and the reasons as numbered lines below it: those are appended.
    """
    lines = [_PEBBLE_PREFIX.sub("", line).strip() for line in log.splitlines()]
    found = [index for index, line in enumerate(lines) if _ERROR_LINE.search(line)]
    if not found:
        return ""
    line = lines[found[-1]]
    reasons = []
    for text in lines[found[-1] + 1 :]:
        if text == "Warnings:":
            break
        if _NUMBERED.match(text):
            reasons.append(text)
    if reasons:
        line = f"{line}: {' '.join(reasons)}"
    return line if len(line) <= 200 else f"{line[:197]}..."  # noqa: PLR2004


class Workload:
    """The ``trino`` container as the charm sees it."""

    def __init__(self, container: ops.Container):
        self.container = container
        self._connectors: frozenset[str] | None = None

    def connectors(self) -> frozenset[str]:
        """The connectors the image ships (its plugin folders), read once a hook.

        A custom image with more plugins gets them; Trino 483's fixed list stands in
        only while the container cannot be read.
        """
        if self._connectors is None:
            try:
                found = self.container.list_files(PLUGIN_DIR)
            except ops.pebble.Error as error:
                logger.debug("cannot list %s, using Trino 483's connectors: %s", PLUGIN_DIR, error)
                found = []
            folders = [info.name for info in found if info.type == ops.pebble.FileType.DIRECTORY]
            self._connectors = connectors_in(folders) if folders else CONNECTORS
        return self._connectors

    def pending(self, plan: Plan) -> list[str]:
        """What differs from ``plan`` (paths, or "Pebble layer"); nothing is written."""
        to_push, to_remove = self._file_changes(plan)
        layer = [change] if (change := self._layer_change(plan.layer)) else []
        return [*to_push, *to_remove, *layer]

    def write(self, plan: Plan) -> list[str]:
        """Make the files and the layer match ``plan``; what changed. Trino is not restarted."""
        to_push, to_remove = self._file_changes(plan)
        for path in to_push:
            file = plan.files[path]
            self.container.push(
                path,
                file.content,
                make_dirs=True,
                permissions=file.mode,
                user="trino",
                group="trino",
            )
        for path in to_remove:
            self.container.remove_path(path)
        changed = [*to_push, *to_remove]
        if change := self._layer_change(plan.layer):
            layer = ops.pebble.Layer(plan.layer)  # type: ignore[arg-type]
            self.container.add_layer(SERVICE, layer, combine=True)
            changed.append(change)
        return changed

    def apply(self, plan: Plan) -> bool:
        """Make the container match ``plan``; True if Trino was (re)started."""
        changed = needs_restart(self.write(plan))
        if not self.is_running():
            logger.info("starting Trino")
            self._start(self.container.replan)
            return True
        if changed:
            logger.info("restarting Trino: %s", ", ".join(changed))
            self.restart()
            return True
        return False

    def _start(self, start: Callable[[], object]) -> None:
        """Start or restart; a Trino that exits at once is reported by the status, not raised.

        Pebble fails the change when the service exits within a second (a launcher
        that refuses to run); it then keeps trying with a back-off, and the unit's
        status shows Pebble's word and Trino's last error line.
        """
        try:
            start()
        except ops.pebble.ChangeError as error:
            logger.error("Trino exited as it started: %s", error.err)

    def read(self, path: str) -> str:
        """A file of the container, or empty when it is not there (or cannot be read)."""
        try:
            with self.container.pull(path) as file:
                return file.read()
        except (ops.pebble.Error, OSError):
            return ""

    def _service(self) -> ops.pebble.ServiceInfo | None:
        """Pebble's view of the trino service; None when undefined, or Pebble has gone.

        Pebble closes its API about a second after it stops its services on SIGTERM
        (pod deletion), which a `stop` hook may see between two calls.
        """
        try:
            return self.container.get_services(SERVICE).get(SERVICE)
        except ops.pebble.ConnectionError as error:
            logger.info("Pebble does not answer: %s", error)
            return None

    def is_running(self) -> bool:
        """Whether Pebble has the trino service up."""
        service = self._service()
        return service is not None and service.is_running()

    def service_status(self) -> str | None:
        """Pebble's word for the service (active, backoff, error...), if defined."""
        service = self._service()
        return str(getattr(service.current, "value", service.current)) if service else None

    def restart(self) -> None:
        """Restart Trino now (a worker does not drain: see `stop`)."""
        self._stop_now()
        self._start(lambda: self.container.restart(SERVICE))

    def stop(self) -> None:
        """Stop Trino now.

        A worker's script drains on SIGTERM (`core.shutdown`), which is for its pod
        going away; when the charm stops or restarts Trino it has drained it first
        if it could, so the file it leaves tells the script to stop Trino at once.
        """
        self._stop_now()
        self.container.stop(SERVICE)

    def _stop_now(self) -> None:
        self.container.push(STOP_NOW, "", make_dirs=True, user="trino", group="trino")

    def stop_draining(self, timeout: float) -> None:
        """Stop a worker for good, its running tasks finished first.

        Pebble's stop is the SIGTERM the worker's script drains on (`core.shutdown`):
        no STOP_NOW flag is left, so Trino finishes its tasks, exits, and Pebble keeps
        the service stopped. Pebble may go away meanwhile (its pod is being deleted,
        and Pebble closes its API about a second after its services stop): Trino is
        then gone with it, which is no error of the hook.
        """
        try:
            self.container.pebble.stop_services([SERVICE], timeout=timeout)
        except ops.pebble.TimeoutError:
            logger.warning("Trino is still draining after %ds", timeout)
        except (ops.pebble.Error, OSError) as error:
            logger.info("Pebble stopped answering while Trino stopped: %s", error)

    def last_error(self) -> str:
        """Trino's last error line from the Pebble log, or empty when none can be read."""
        try:
            process = self.container.exec(
                [PEBBLE, "logs", SERVICE, "-n", "200"],
                environment={"PEBBLE_SOCKET": PEBBLE_SOCKET},
                timeout=10,
            )
            output, _ = process.wait_output()
        except (ops.pebble.Error, OSError) as error:
            logger.debug("cannot read Trino's log: %s", error)
            return ""
        return last_error_line(output)

    def _file_changes(self, plan: Plan) -> tuple[list[str], list[str]]:
        """Paths to push, and stale paths to remove from the charm's exclusive folders."""
        present = self._list(ETC, *plan.exclusive_dirs)
        to_push = [
            path
            for path, file in sorted(plan.files.items())
            if self._differs(path, file, present.get(path))
        ]
        to_remove = [
            path
            for path, info in sorted(present.items())
            if (
                any(path.startswith(f"{d}/") for d in plan.exclusive_dirs)
                or path in plan.optional_files
            )
            and path not in plan.files
            and info.type == ops.pebble.FileType.FILE
        ]
        return to_push, to_remove

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
        content = file.data
        if info is None or info.permissions != file.mode or info.size != len(content):
            return True
        with self.container.pull(path, encoding=None) as current:
            return current.read() != content

    def _layer_change(self, layer: dict[str, Any]) -> str:
        """What changes: "Pebble layer" (the service), CHECK_CHANGE (only the check), or none."""
        desired = ops.pebble.Layer(layer)  # type: ignore[arg-type]
        plan = self.container.get_plan()
        service = plan.services.get(SERVICE)
        if service is None or service.to_dict() != desired.services[SERVICE].to_dict():
            return "Pebble layer"
        check = plan.checks.get(CHECK)
        if check is None or check.to_dict() != desired.checks[CHECK].to_dict():
            return CHECK_CHANGE
        return ""

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
