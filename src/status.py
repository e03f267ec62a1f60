"""The one place that decides what `juju status` says about a unit.

Operator input first (it needs action: `blocked` with the input and the fix),
then what the unit waits for, then what Trino itself says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ops

from access import WAITING_PREFIX
from core import exchange
from core.config import CharmConfig, ConfigError, Role
from core.plan import NodeInputs, idle_reason
from core.security import GROUP_SECRET_OPTION, LDAP_CA_OPTION, LDAP_OPTIONS
from workload import probe

if TYPE_CHECKING:
    from charm import TrinoK8sCharm

# Coordinator-only options that a worker takes from its coordinator instead.
COORDINATOR_ONLY = (
    ("catalog-config", "catalogs"),
    ("user-secret-id", "users"),
    ("access-control-rules", "rules"),
    ("resource-groups", "resource groups"),
    ("session-properties", "session property defaults"),
    *((option, "LDAP logins") for option in (*LDAP_OPTIONS, LDAP_CA_OPTION)),
    (GROUP_SECRET_OPTION, "groups"),
)


def unit_status(charm: TrinoK8sCharm) -> ops.StatusBase:
    """Operator input problems first (they need action), then the workload's state."""
    inputs = charm.snapshot.inputs()
    if isinstance(inputs, ConfigError):
        return ops.BlockedStatus(first_of(inputs.problems))
    blocked, waiting = _input_problems(charm, inputs)
    if blocked:
        return ops.BlockedStatus(first_of(blocked))
    if inputs.access_problems:  # only waits are left: nothing applied until they end
        return ops.WaitingStatus(first_of(list(inputs.access_problems)))
    if inputs.fault_tolerance.waiting:
        return ops.WaitingStatus(inputs.fault_tolerance.waiting)  # nothing applied either
    status = _workload_status(charm, inputs)
    if waiting and isinstance(status, ops.ActiveStatus):
        return ops.WaitingStatus(first_of(waiting))
    return status


def first_of(problems: list[Any]) -> str:
    """The first problem, and how many more the log has."""
    more = f" (+{len(problems) - 1} more in juju debug-log)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


def draining(config: CharmConfig) -> str:
    """What a draining worker says."""
    period = config.graceful_shutdown_period.strip()
    return f"draining: running tasks finish (up to 2 x {period}), then Trino restarts"


def _input_problems(charm: TrinoK8sCharm, inputs: NodeInputs) -> tuple[list[str], list[str]]:
    """What the operator must fix, and what related applications have not sent yet."""
    blocked = []
    if charm.resource_problem:
        blocked.append(f"Kubernetes: {charm.resource_problem}")
    blocked += inputs.catalogs.problems
    blocked += [p for p in inputs.access_problems if not p.startswith(WAITING_PREFIX)]
    if inputs.fault_tolerance.problem:
        blocked.append(inputs.fault_tolerance.problem)
    if inputs.config.role is Role.WORKER:
        reset = f"`juju config {charm.app.name} --reset"
        blocked += [
            f"{option} is unused on a worker ({what} come from the coordinator): {reset} {option}`"
            for option, what in COORDINATOR_ONLY
            if str(charm.config.get(option, "")).strip()
        ]
        if inputs.config.retry != exchange.NONE:
            blocked.append(
                "retry-policy is unused on a worker (the coordinator's applies): "
                f"{reset} retry-policy`"
            )
        if (ldap := charm.access.ldap.relation) and ldap.app:
            blocked.append(
                "ldap is unused on a worker (LDAP logins come from the coordinator): "
                f"`juju remove-relation {charm.app.name}:ldap {ldap.app.name}`"
            )
    relation_blocked, waiting = charm.relation_catalogs.problems()
    return blocked + relation_blocked, waiting


def _workload_status(charm: TrinoK8sCharm, inputs: NodeInputs) -> ops.StatusBase:
    workload = charm.workload
    if not workload.container.can_connect():
        return ops.WaitingStatus("waiting for the trino container to start")
    waiting = idle_reason(inputs)
    if waiting:
        return ops.WaitingStatus(waiting)
    config = inputs.config
    restarting = _restart_status(charm, config)
    if restarting:
        return restarting
    if not workload.is_running():
        if charm.peers.unit_data().restart_request and workload.service_status() == "backoff":
            # Between a drained Trino's exit and Pebble starting it on the new files.
            return ops.MaintenanceStatus("restarting: Trino starts again on its new files")
        line = workload.last_error()
        return ops.BlockedStatus(
            f"Trino is {workload.service_status() or 'not set up'}"
            f"{f'; Trino says: {line}' if line else ''}; see "
            f"`juju ssh --container trino {charm.unit.name} pebble logs trino`"
        )
    return _serving_status(charm, inputs)


def _serving_status(charm: TrinoK8sCharm, inputs: NodeInputs) -> ops.StatusBase:
    """What Trino itself says: starting, draining, or serving its role."""
    config = inputs.config
    info = probe()
    if info is None:
        return ops.WaitingStatus("Trino is starting (not answering on port 8080 yet)")
    if info.version:
        charm.unit.set_workload_version(info.version)
    if info.starting:
        return ops.WaitingStatus("Trino is starting")
    if info.state == "SHUTTING_DOWN":
        return ops.MaintenanceStatus(draining(config))
    return ops.ActiveStatus(_serving_note(charm, inputs))


def _serving_note(charm: TrinoK8sCharm, inputs: NodeInputs) -> str:
    """What an active unit adds: a queued restart, advice, or what a coordinator needs."""
    if charm.restarts.queued:
        return charm.restarts.queued
    role = inputs.config.role
    advice = exchange.query_advice(inputs.fault_tolerance, charm.app.name)
    if advice and role is not Role.WORKER:
        return advice
    return "coordinator: queries run once workers join" if role is Role.COORDINATOR else ""


def _restart_status(charm: TrinoK8sCharm, config: CharmConfig) -> ops.StatusBase | None:
    """A drain in progress, or a restart that failed and holds up the roll."""
    if charm.restarts.draining:
        return ops.MaintenanceStatus(draining(config))
    # A failure seen once stays until Trino serves again: a crash-looping Trino is
    # "starting" between its crashes, and the status must not flicker to waiting.
    failure = charm.restarts.failure(config.role is Role.WORKER, config.grace_seconds) or (
        charm.peers.unit_data().restart_failed
    )
    if not failure:
        return None
    line = charm.workload.last_error()
    return ops.BlockedStatus(
        f"restart failed: {failure}{f'; Trino says: {line}' if line else ''}. The roll "
        f"is paused here: fix the cause, then `juju run {charm.app.name}/leader restart`"
    )
