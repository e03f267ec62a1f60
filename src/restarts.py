"""Rolling restarts: every restart the charm needs goes one unit at a time.

A unit whose files changed does not touch them until the leader hands it the lock
(`core.rolling`), so every other unit keeps running on its last good files. With
the lock, a worker writes its new files and drains (Trino finishes its tasks and
exits; Pebble starts it again on the new files); any other node restarts at once.
The unit keeps the lock until Trino serves again, which it hears at once from the
`trino-ready` check's Pebble notice (`pebble-custom-notice`, see
`core.plan.ready_check_command`), not at the next update-status; if Trino never
serves, the roll stops there and the unit says why.
"""

from __future__ import annotations

import logging
import time

import ops

from core import rolling
from core.plan import CHARM_USER, Plan
from relations.peers import Peers
from workload import Credentials, Workload, drain, needs_restart, probe

logger = logging.getLogger(__name__)


class RollingRestart:
    """This unit's side of the restart lock, and the leader's grants."""

    def __init__(self, unit: ops.Unit, peers: Peers, workload: Workload):
        self._unit = unit
        self._peers = peers
        self._workload = workload
        self.queued: str = ""  # why this unit waits with a restart pending
        self.draining = False  # a drain began in this hook
        # Trino serves on exactly the planned files: what a coordinator may hand its workers.
        self.in_effect = False
        # The charm user's password etc. when authentication is on (set by the charm).
        self.credentials: Credentials | None = None

    @property
    def alone(self) -> bool:
        """No other unit to keep serving: restart without asking."""
        return len(self._peers.units) == 1

    def epoch_due(self) -> bool:
        """Whether the restart action asked for a restart this unit has not done yet."""
        return self._peers.app_data.restart_epoch > self._peers.unit_data().restart_epoch

    def apply(self, plan: Plan, *, drain_first: bool, grace_seconds: float) -> None:
        """Bring the node to ``plan``, restarting in turn; withdraw once Trino serves again."""
        asking = self._peers.unit_data().restart_request
        if not self._workload.is_running() and not self._retrying(plan):
            # Nothing runs, so no query can be lost: start on the new files now. A unit
            # that restarted under the lock keeps it until Trino serves: a node that
            # crashes on its new files must stop the roll, not pass it on.
            self._workload.apply(plan)
            if not asking:
                self._done()
        elif self._pending_restart(plan):
            if self._my_turn():
                self._restart(plan, drain_first=drain_first)
            return
        self.in_effect = self.serving()
        if asking and self.in_effect:
            logger.info("Trino serves again: handing the restart lock on")
            self._peers.save_unit(restart_request=False, restart_failed="")
        elif asking and (failure := self.failure(drain_first, grace_seconds)):
            self._peers.save_unit(restart_failed=failure)
        self.grant()

    def _retrying(self, plan: Plan) -> bool:
        """Pebble is already starting Trino again after a crash, on the planned files."""
        return self._workload.service_status() == "backoff" and not self._workload.pending(plan)

    def _pending_restart(self, plan: Plan) -> bool:
        """Whether Trino must restart to reach ``plan``; files it rereads are written now."""
        pending = self._workload.pending(plan)
        if pending and not needs_restart(pending):
            # Only files Trino reloads by itself (users, rules): no restart, no lock.
            self._workload.write(plan)
            return self.epoch_due()
        return bool(pending) or self.epoch_due()

    def idle(self) -> None:
        """This unit runs no Trino: it never holds up the roll."""
        self._done()
        self.grant()

    def grant(self) -> None:
        """Leader: hand the lock to the next unit that asks (the holder keeps it until done)."""
        if not self._unit.is_leader() or self._peers.relation is None:
            return
        asking = [
            unit.name for unit in self._peers.units if self._peers.unit_data(unit).restart_request
        ]
        holder = rolling.next_grant(self._peers.app_data.restart_granted, asking)
        if holder != self._peers.app_data.restart_granted:
            logger.info("restart lock: %s", holder or "free")
            self._peers.save(restart_granted=holder)

    def serving(self) -> bool:
        """Whether Trino answers, has started and is not draining."""
        info = probe()
        return (
            info is not None
            and not info.starting
            and info.state == "ACTIVE"
            and self._workload.is_running()
        )

    def failure(self, drained: bool, grace_seconds: float = 0.0) -> str:
        """Why the restart this unit made under the lock failed, or empty."""
        data = self._peers.unit_data()
        if not (data.restart_request and data.restart_started):
            return ""
        status = self._workload.service_status()
        # A drained worker exits on purpose, and Pebble shows "backoff" for a moment
        # before it starts it again: for it only the deadline tells a failure.
        if status == "error" or (status == "backoff" and not drained):
            return f"Trino keeps exiting (Pebble: {status})"
        deadline = rolling.restart_deadline(data.restart_started, drained, grace_seconds)
        if time.time() > deadline and not self.serving():
            return "Trino did not serve again in time (check trino-ready failing)"
        return ""

    def holder_failure(self) -> str:
        """The failure of the unit holding the lock, if it failed."""
        holder = self._peers.app_data.restart_granted
        for unit in self._peers.units:
            if unit.name == holder:
                return self._peers.unit_data(unit).restart_failed
        return ""

    def drain_for_good(self, grace_seconds: float) -> None:
        """The worker leaves (its pod goes, or its coordinator): its tasks finish first.

        Pebble stops the service; the worker's script drains on that SIGTERM and
        kills Trino just before the service's kill-delay (`core.shutdown`), so the
        wait is bounded by the pod's own terminationGracePeriodSeconds.
        """
        if not self._workload.is_running():  # stopped, or Pebble gone with its pod
            return
        budget = rolling.termination_grace_seconds(grace_seconds)
        logger.info("draining before Trino stops for good (up to %ds)", budget)
        self._workload.stop_draining(budget)

    def _my_turn(self) -> bool:
        if self.alone:
            return True
        self._peers.save_unit(restart_request=True)
        self.grant()
        holder = self._peers.app_data.restart_granted
        turn = rolling.turn(self._unit.name, holder, bool(self.holder_failure()))
        self.queued = turn.message
        return turn.may_restart

    def _restart(self, plan: Plan, *, drain_first: bool) -> None:
        changed = self._workload.write(plan)
        logger.info("restarting Trino: %s", ", ".join(changed) or "restart action")
        # Even a unit alone holds its request until Trino serves again: that is how a
        # restart that fails is noticed and reported, not retried as if nothing happened.
        self._peers.save_unit(
            restart_request=True,
            restart_started=time.time(),
            restart_epoch=self._peers.app_data.restart_epoch,
            restart_failed="",
        )
        if drain_first:
            problem = drain(CHARM_USER, credentials=self.credentials)
            if problem is None:
                logger.info("draining: Trino restarts on its new files once its tasks are done")
                self.draining = True
                return
            logger.warning("%s; restarting without draining", problem)
        self._workload.restart()

    def _done(self) -> None:
        self._peers.save_unit(
            restart_request=False,
            restart_failed="",
            restart_epoch=self._peers.app_data.restart_epoch,
        )
