"""The rolling-restart lock: one unit of an application restarts Trino at a time.

A unit that must restart asks; the leader grants the lock to one asking unit; that
unit restarts and keeps asking until Trino serves again, so the next unit waits for
it. A unit that never comes back keeps the lock: the roll stops there, and every
other unit keeps running on its last good files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

# How long a restarted node may take to serve again before the roll calls it failed.
START_TIMEOUT = 5 * 60.0
# Extra time Kubernetes gives a draining worker beyond twice the grace period.
TERMINATION_MARGIN = 30
# How long a new worker pod must stay Ready before Kubernetes' rolling update (a refresh)
# deletes the next one (the StatefulSet's minReadySeconds). A pod is Ready as soon as
# its Pebble runs, before the charm has added the trino-ready check, and stays Ready
# until that check has failed three times (2 s apart): without this wait the next
# worker would drain while this one's Trino is still starting.
MIN_READY_SECONDS = 30


def unit_number(unit_name: str) -> int:
    """The number of ``app/3``: the lock goes in unit order."""
    return int(unit_name.rpartition("/")[2])


def next_grant(holder: str, asking: Iterable[str]) -> str:
    """Who may restart now: the holder while it still asks, else the first asking unit."""
    waiting = sorted(set(asking), key=unit_number)
    if holder in waiting:
        return holder
    return waiting[0] if waiting else ""


def restart_deadline(started: float, drained: bool, grace_seconds: float) -> float:
    """When a restart that began at ``started`` counts as failed.

    A drained worker first waits out its grace period twice (Trino's graceful
    shutdown), then starts like any other node.
    """
    return started + START_TIMEOUT + (2 * grace_seconds if drained else 0)


def termination_grace_seconds(grace_seconds: float) -> int:
    """The pod's terminationGracePeriodSeconds a draining worker needs."""
    return int(2 * grace_seconds) + TERMINATION_MARGIN


class Turn(NamedTuple):
    """What the roll says this unit should do about its pending restart."""

    may_restart: bool
    message: str  # for the unit status while it waits


def turn(unit: str, holder: str, failed: bool = False) -> Turn:
    """Whether ``unit`` may restart now, or whom it waits for (a unit alone never asks)."""
    if holder == unit:
        return Turn(True, "")
    if not holder:
        return Turn(False, "restart queued: waiting for the leader to hand out the lock")
    if failed:
        return Turn(False, f"restart queued: the roll is paused at {holder}, which failed")
    return Turn(False, f"restart queued: waiting for {holder} to finish its restart")
