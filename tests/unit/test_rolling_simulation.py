"""A catalog change rolls through a 3-unit worker application one unit at a time."""

from __future__ import annotations

import pathlib

from rolling_sim import catalog_change


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
    drains = [line.split(":")[0].strip() for line in sim.log if "drain requested" in line]
    assert drains == ["trino-worker/0", "trino-worker/1", "trino-worker/2"]
