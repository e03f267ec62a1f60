#!/usr/bin/env python3
"""What a trino-k8s hook costs, as ratios to ops itself and to an empty charm.

Every Juju hook is a fresh Python process, so the charm's cost is (a) importing
src/charm.py and (b) one whole hook. Each sample is a fresh interpreter; baseline
and charm samples alternate, so machine noise hits both alike, and only ratios
measured in the same run are compared with the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

# Only sys and time (both already loaded at startup) come before the timed import.
IMPORT_CHILD = """\
import sys, time
t0 = time.perf_counter()
__import__(sys.argv[1])
print('{"ms": %f, "status": ""}' % ((time.perf_counter() - t0) * 1000))
"""

# The harness (ops.testing) is loaded first and not timed: a real hook does not pay
# for it. Timed: importing the charm module, then the first config-changed run.
# leader=False: on config-changed the leader patches the pod resources through the
# Kubernetes API (lightkube), which needs a cluster; that is leader-only work.
HOOK_CHILD = """\
import json, sys, tempfile, time
from ops import testing
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
charm_type = getattr(__import__(args["module"]), args["cls"])
t1 = time.perf_counter()
ctx = testing.Context(charm_type, **args["yaml"])  # the same metadata for both charms
with tempfile.TemporaryDirectory() as etc:
    mount = testing.Mount(location="/etc/trino", source=etc)
    container = testing.Container("trino", can_connect=True, mounts={"etc": mount})
    state = testing.State(leader=False, config=args["options"], containers={container})
    t2 = time.perf_counter()
    out = ctx.run(ctx.on.config_changed(), state)
    t3 = time.perf_counter()
status = f"{out.unit_status.name}: {out.unit_status.message}"
print(json.dumps({"ms": (t1 - t0 + t3 - t2) * 1000, "status": status}))
"""


@dataclasses.dataclass(frozen=True)
class Side:
    """One program to sample: a child script, its one argument and its import path."""

    label: str
    child: str
    arg: str
    path: tuple[str, ...] = ("src", "lib")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named comparison; its in-process ratio must stay at or under ``target``."""

    name: str
    baseline: Side
    charm: Side
    target: float


LEGEND = """
Medians. "in process": timed in the child, the import alone (charm imports ops) or the charm
module's import + the first ctx.run (ops.testing loaded before, untimed). "whole process":
the child's wall time seen from here, start-up and harness included (context, no target)."""


def importing(module: str) -> Side:
    """A fresh ``import module``, with src and lib on the path like a hook's."""
    return Side(f"import {module}", IMPORT_CHILD, module)


def hook(label: str, charm_dir: str, cls: str, options: dict[str, Any]) -> Side:
    """A config-changed hook of ``charm_dir``/charm.py, with the repository's metadata."""
    files = {"meta": "metadata", "config": "config", "actions": "actions"}
    meta = {key: yaml.safe_load((ROOT / f"{f}.yaml").read_text()) for key, f in files.items()}
    args = {"module": "charm", "cls": cls, "options": options, "yaml": meta}
    return Side(label, HOOK_CHILD, json.dumps(args), (charm_dir, "lib"))


# Add scenarios here (e.g. config-changed with 50 catalogs, target 2.0).
SCENARIOS = [
    Scenario("import", importing("ops"), importing("charm"), 1.5),
    Scenario(
        "config-changed",
        hook("empty charm", "bench/empty_charm", "EmptyCharm", {}),
        hook("trino-k8s", "src", "TrinoK8sCharm", {}),
        2.0,
    ),
]


def run(args: list[str], path: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Run a fresh ``python *args`` from the repository root with ``path`` as PYTHONPATH."""
    # Bytecode is written (the warm-up does it), as a deployed charm's first hook does.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in path)
    cmd = [sys.executable, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def sample(side: Side) -> tuple[float, float, str]:
    """Run ``side`` once in a fresh interpreter: (in-process ms, whole-process ms, status)."""
    start = time.perf_counter()
    proc = run(["-c", side.child, side.arg], side.path)
    wall = (time.perf_counter() - start) * 1000
    if proc.returncode:
        sys.exit(f"{side.label} failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.splitlines()[-1])
    return out["ms"], wall, out["status"]


def measure(scenario: Scenario, samples: int) -> dict[str, list[tuple[float, float, str]]]:
    """Interleave baseline and charm samples, swapping their order every round."""
    sides = [scenario.baseline, scenario.charm]
    for side in sides:  # warm-up, discarded: writes the .pyc files, fills the disk cache
        sample(side)
    runs: dict[str, list[tuple[float, float, str]]] = {side.label: [] for side in sides}
    for i in range(samples):
        for side in sides if i % 2 == 0 else sides[::-1]:
            runs[side.label].append(sample(side))
    return runs


def port_8080_busy() -> bool:
    """Whether something answers on localhost:8080, where the charm probes Trino."""
    with contextlib.suppress(OSError), socket.create_connection(("localhost", 8080), 0.5):
        return True
    return False


def print_importtime(top: int = 10) -> None:
    """Print the modules that cost most when importing charm (python -X importtime)."""
    proc, rows = run(["-X", "importtime", "-c", "import charm"], ("src", "lib")), []
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), int(parts[0]), parts[2].rstrip()))
    print(f"\nimport charm, top {top} by cumulative time (-X importtime, one run):")
    print(f"{'cumulative ms':>13}  {'self ms':>7}  module")
    for cumulative, own, name in sorted(rows, reverse=True)[:top]:
        print(f"{cumulative / 1000:13.1f}  {own / 1000:7.1f}  {name}")


def main() -> int:
    """Measure every scenario, print the table; with --check, exit 1 on a missed target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=15, help="samples per side")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--importtime", action="store_true", help="top imports of charm")
    opts = parser.parse_args()
    print(f"Python {platform.python_version()}, ops {version('ops')}, {sys.executable}")
    busy = "WARNING: something listens, so probe() is not refused as on a starting node"
    print("localhost:8080:", busy if port_8080_busy() else "nothing listens (probe() refused)")
    print(f"{opts.samples} samples per side, interleaved, after 1 discarded warm-up each\n")
    header = f"{'scenario':<40} {'baseline':>9} {'charm':>9} {'ratio':>6} {'target':>7}"
    print(f"{header}  result\n{'-' * (len(header) + 8)}")
    missed, notes = False, []
    for scenario in SCENARIOS:
        runs = measure(scenario, opts.samples)
        for col, what in ((0, "in process"), (1, "whole process")):
            b = statistics.median(r[col] for r in runs[scenario.baseline.label])
            c = statistics.median(r[col] for r in runs[scenario.charm.label])
            ok = col == 1 or c / b <= scenario.target  # whole process is context only
            missed |= not ok
            target = "-" if col else f"{scenario.target:.1f}"
            verdict = "info" if col else ("PASS" if ok else "FAIL")
            name = f"{scenario.name} ({what})"
            print(f"{name:<40} {b:7.1f}ms {c:7.1f}ms {c / b:6.2f} {target:>7}  {verdict}")
        notes += [f"{scenario.name}: {k} ends {r[-1][2]!r}" for k, r in runs.items() if r[-1][2]]
    print("\n".join([LEGEND, *notes]))
    if opts.importtime:
        print_importtime()
    return 1 if opts.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
