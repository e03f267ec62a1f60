#!/usr/bin/env python3
"""The baseline of bench/bench.py: a charm that observes nothing.

bench.py runs it with the trino-k8s metadata, config and actions, so what it
costs is what ops (and the harness) cost for this charm's metadata alone.
"""

import ops


class EmptyCharm(ops.CharmBase):
    """Does nothing beyond what ops.CharmBase does."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)


if __name__ == "__main__":  # pragma: nocover
    ops.main(EmptyCharm)
