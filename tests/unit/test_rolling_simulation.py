"""A catalog change rolls through the workers one unit at a time, and how long it takes."""

from __future__ import annotations

import pathlib

import pytest
from rolling_sim import BEFORE, Timing, catalog_change, report, roll_goal


def test_a_catalog_change_rolls_through_the_workers_one_at_a_time(tmp_path: pathlib.Path):
    sim = catalog_change(tmp_path)
    print("\n".join(sim.log))  # the step-by-step timeline, shown with `pytest -s`

    # At most one worker was ever draining or restarting, and each restarted once.
    assert sim.most_down == 1
    assert {node.name: node.restarts for node in sim.nodes.values()} == {
        "trino/0": 1,
        "trino-worker/0": 1,
        "trino-worker/1": 1,
        "trino-worker/2": 1,
    }
    # A worker waiting for its turn kept its last good files.
    assert sim.early == []
    # In the end every node serves the new catalog.
    for node in sim.nodes.values():
        assert (
            (node.etc / "catalog" / "tiny.properties")
            .read_text()
            .endswith("connector.name=tpch\n")
        )
        assert node.state.unit_status.name == "active", node.name
    # The workers drained in unit order.
    drains = [line.split()[1].rstrip(":") for line in sim.log if "drain requested" in line]
    assert drains == ["trino-worker/0", "trino-worker/1", "trino-worker/2"]


@pytest.mark.parametrize("workers", [3, 10])
def test_a_roll_takes_drain_plus_start_per_unit_and_no_update_status(
    tmp_path: pathlib.Path, workers: int
):
    """Issue 13's goal: roll <= sum(drain + start) + 10 s per unit, no update-status."""
    timing = Timing()  # update-status never comes: the roll must not need it
    figures = report(tmp_path, workers, timing)
    print(figures)

    assert figures["roll_s"] <= roll_goal(workers, timing)
    assert figures["update_status_hooks"] == 0
    assert figures["ready_to_active_s"] <= 5.0
    assert figures["most_down"] == 1


def test_without_notices_the_roll_waits_for_update_status(tmp_path: pathlib.Path):
    """The charm before issue 13, same timings: each unit waited for update-status."""
    figures = report(tmp_path, 3, BEFORE)

    assert figures["update_status_hooks"] > 0
    assert figures["roll_s"] > roll_goal(3, BEFORE)
    assert figures["ready_to_active_s"] > 60
