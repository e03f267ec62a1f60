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
import shutil
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
print('{"ms": %f, "harness_ms": 0, "status": ""}' % ((time.perf_counter() - t0) * 1000))
"""

# A hook is a whole process: interpreter, `import ops`, the charm, its work. Here
# Juju's part is played by the harness (ops.testing), whose own import (timed apart,
# after ops) a real hook never pays: it is subtracted from the process wall time.
# "ms" is the charm's share alone: importing the charm module and the first run.
HOOK_CHILD = """\
import json, sys, tempfile, time
import ops
t = time.perf_counter()
from ops import testing
harness = time.perf_counter() - t
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
charm_type = getattr(__import__(args["module"]), args["cls"])
t1 = time.perf_counter()
ctx = testing.Context(charm_type, **args["yaml"])  # the same metadata for both charms
with tempfile.TemporaryDirectory() as etc:
    mount = testing.Mount(location="/etc/trino", source=etc)
    container = testing.Container("trino", can_connect=True, mounts={"etc": mount})
    peers = testing.PeerRelation("trino-peers")
    state = testing.State(
        leader=args["leader"], config=args["options"], containers={container}, relations={peers}
    )
    t2 = time.perf_counter()
    out = ctx.run(ctx.on.config_changed(), state)
    t3 = time.perf_counter()
status = f"{out.unit_status.name}: {out.unit_status.message}"
ms = (t1 - t0 + t3 - t2) * 1000
print(json.dumps({"ms": ms, "harness_ms": harness * 1000, "status": status}))
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
    """A named comparison; the ratio in the ``judged`` column must stay at or under ``target``."""

    name: str
    baseline: Side
    charm: Side
    target: float
    judged: str  # "in process" for imports, "per hook" for hooks


LEGEND = """
Medians. "in process": timed inside the child: the import alone (charm imports ops), or
the charm module's import + its first ctx.run (ops and ops.testing loaded before,
untimed). "per hook": the child's wall time (interpreter, import ops, charm, hook) less
the import of ops.testing, which stands in for Juju and which a real hook never pays.
The target applies to the column marked PASS/FAIL; the others are context ("info")."""


def importing(module: str) -> Side:
    """A fresh ``import module``, with src and lib on the path like a hook's."""
    return Side(f"import {module}", IMPORT_CHILD, module)


def hook(
    label: str, charm_dir: str, cls: str, options: dict[str, Any], leader: bool = False
) -> Side:
    """A config-changed hook of ``charm_dir``/charm.py, with the repository's metadata."""
    files = {"meta": "metadata", "config": "config", "actions": "actions"}
    meta = {key: yaml.safe_load((ROOT / f"{f}.yaml").read_text()) for key, f in files.items()}
    args = {"module": "charm", "cls": cls, "options": options, "yaml": meta, "leader": leader}
    return Side(f"{label} leader={leader}", HOOK_CHILD, json.dumps(args), (charm_dir, "lib"))


def fifty_catalogs() -> dict[str, str]:
    """catalog-config with 50 catalogs of the kinds operators write."""
    catalogs: dict[str, Any] = {}
    for i in range(50):
        if i % 2:
            url = f"jdbc:postgresql://db-{i}.example:5432/sales_{i}"
            catalogs[f"pg_{i}"] = {
                "connector": "postgresql",
                "properties": {"connection-url": url},
            }
        else:
            catalogs[f"tpch_{i}"] = {
                "connector": "tpch",
                "properties": {"tpch.splits-per-node": 4},
            }
    return {"catalog-config": yaml.safe_dump(catalogs)}


def empty(leader: bool = False) -> Side:
    """The empty charm with the same metadata: the floor every hook pays."""
    return hook("empty charm", "bench/empty_charm", "EmptyCharm", {}, leader)


def trino(options: dict[str, Any], leader: bool = False) -> Side:
    """The trino-k8s charm."""
    return hook("trino-k8s", "src", "TrinoK8sCharm", options, leader)


SCENARIOS = [
    Scenario("import", importing("ops"), importing("charm"), 1.3, "in process"),
    # Only the leader of an all/coordinator application runs Trino; other units stand by.
    Scenario("config-changed, standby unit", empty(), trino({}), 2.0, "per hook"),
    Scenario("config-changed, leader", empty(True), trino({}, True), 2.0, "per hook"),
    Scenario(
        "config-changed, leader, 50 catalogs",
        empty(True),
        trino(fifty_catalogs(), True),
        1.5,
        "per hook",
    ),
]


def run(
    args: list[str], path: tuple[str, ...], prefix: tuple[str, ...] | list[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Run a fresh ``python *args`` from the repository root with ``path`` as PYTHONPATH."""
    # Bytecode is written (the warm-up does it), as a deployed charm's first hook does.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in path)
    if prefix:  # counted runs: the same program must execute the same instructions
        env["PYTHONHASHSEED"] = "0"
    cmd = [*prefix, sys.executable, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def sample(side: Side) -> tuple[float, float, str]:
    """Run ``side`` once in a fresh interpreter: (in-process ms, per-hook ms, status)."""
    start = time.perf_counter()
    proc = run(["-c", side.child, side.arg], side.path)
    wall = (time.perf_counter() - start) * 1000
    if proc.returncode:
        sys.exit(f"{side.label} failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.splitlines()[-1])
    return out["ms"], wall - out["harness_ms"], out["status"]


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


def instructions(child: str, arg: str, path: tuple[str, ...]) -> int:
    """Instructions one fresh ``python -c child arg`` executes, counted by callgrind.

    Counts, unlike times, do not move with the machine's load: the same program gives
    the same figure (hash randomisation off) whatever else runs beside it.
    """
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        tool = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        proc = run(["-c", child, arg], path, prefix=tool)
        if proc.returncode:
            sys.exit(f"callgrind run failed:\n{proc.stderr[-2000:]}")
        for line in out.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    sys.exit("callgrind wrote no summary")


def print_instructions() -> bool:
    """Every scenario's ratio in instructions (callgrind): one run per side; False if missed.

    "in process" for imports: the import alone (a bare interpreter's count subtracted).
    "per hook": the whole process less the import of ops.testing (counted apart),
    which stands in for Juju.
    """
    if not shutil.which("valgrind"):
        sys.exit("--instructions needs valgrind (apt-get install valgrind)")
    bare = instructions("pass", "", ("src", "lib"))
    ops_only = instructions("import ops", "", ("src", "lib"))
    harness = instructions("import ops\nfrom ops import testing", "", ("src", "lib")) - ops_only
    print("\ninstructions (callgrind, one run per side, millions):")
    header = f"{'scenario':<46} {'baseline':>9} {'charm':>9} {'ratio':>6} {'target':>7}"
    print(f"{header}  result\n{'-' * (len(header) + 8)}")
    ok_all = True
    for scenario in SCENARIOS:
        counts = []
        for side in (scenario.baseline, scenario.charm):
            count = instructions(side.child, side.arg, side.path)
            counts.append(count - (bare if side.child == IMPORT_CHILD else harness))
        ratio = counts[1] / counts[0]
        ok = ratio <= scenario.target
        ok_all &= ok
        name = f"{scenario.name} ({scenario.judged})"
        print(
            f"{name:<46} {counts[0] / 1e6:8.1f}M {counts[1] / 1e6:8.1f}M {ratio:6.2f} "
            f"{scenario.target:>7.1f}  {'PASS' if ok else 'FAIL'}"
        )
    return ok_all


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


def print_rolls() -> bool:
    """A catalog change rolling through N workers, on the simulated clock; False if missed.

    tests/unit/rolling_sim.py runs the real charm's hooks under ops.testing and plays
    Juju and Trino on a clock: drain 30 s, start 30 s, hook 1 s, delivery 0.5 s, the
    check's period 2 s. "before" is the same charm without the check's notices, seen
    only by update-status every 5 minutes (the charm before issue 13).
    """
    import tempfile  # noqa: PLC0415

    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    import rolling_sim  # noqa: PLC0415

    print("\nrolling a catalog change (simulated clock, tests/unit/rolling_sim.py):")
    header = f"{'charm':<8} {'workers':>7} {'roll':>7} {'goal':>7} {'update-status':>13}"
    print(f"{header} {'ready->active':>13}  result\n{'-' * (len(header) + 22)}")
    ok_all = True
    for label, timing in (("now", rolling_sim.Timing()), ("before", rolling_sim.BEFORE)):
        for workers in (3, 10):
            with tempfile.TemporaryDirectory() as tmp:
                figures = rolling_sim.report(Path(tmp), workers, timing)
            ok = (
                figures["roll_s"] <= figures["goal_s"]
                and figures["update_status_hooks"] == 0
                and figures["ready_to_active_s"] <= 5
            )
            verdict = ("PASS" if ok else "FAIL") if label == "now" else "info"
            ok_all &= ok or label != "now"
            print(
                f"{label:<8} {workers:>7} {figures['roll_s']:>6.0f}s {figures['goal_s']:>6.0f}s "
                f"{figures['update_status_hooks']:>13} {figures['ready_to_active_s']:>12.1f}s"
                f"  {verdict}"
            )
    print(
        "goal: roll <= sum(drain + start) + 10 s per unit, no update-status hook, "
        "Trino ready -> active <= 5 s"
    )
    return ok_all


def main() -> int:
    """Measure every scenario, print the table; with --check, exit 1 on a missed target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=15, help="samples per side")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--importtime", action="store_true", help="top imports of charm")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
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
        for col, what in ((0, "in process"), (1, "per hook")):
            b = statistics.median(r[col] for r in runs[scenario.baseline.label])
            c = statistics.median(r[col] for r in runs[scenario.charm.label])
            judged = what == scenario.judged
            ok = not judged or c / b <= scenario.target
            missed |= not ok
            target = f"{scenario.target:.1f}" if judged else "-"
            verdict = ("PASS" if ok else "FAIL") if judged else "info"
            if what == "per hook" and scenario.judged == "in process":
                what = "whole process"  # an import child has no harness to subtract
            name = f"{scenario.name} ({what})"
            print(f"{name:<40} {b:7.1f}ms {c:7.1f}ms {c / b:6.2f} {target:>7}  {verdict}")
        notes += [f"{scenario.name}: {k} ends {r[-1][2]!r}" for k, r in runs.items() if r[-1][2]]
    print("\n".join([LEGEND, *notes]))
    if opts.importtime:
        print_importtime()
    if opts.instructions:
        missed |= not print_instructions()
    missed |= not print_rolls()
    return 1 if opts.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
