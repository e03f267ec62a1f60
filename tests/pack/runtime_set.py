"""The charm's runtime set as uv.lock pins it, and the wheels `charmcraft pack` installs.

The uv plugin of `charmcraft pack` runs `uv sync --frozen --no-dev` with the builder's
Python (CPython 3.12 on ubuntu@24.04): it installs, for the build platform, every package
of `uv export` whose marker holds there, from a wheel whenever the lock has one. This
module answers the same questions without LXD, for each platform of charmcraft.yaml.

Run as a script it prints the runtime set with the wheel of each package and the total
wheel size per platform (read from uv.lock, no download):

    python tests/pack/runtime_set.py [PROJECT_DIR]
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import tomllib
from packaging import tags
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from uv import find_uv_bin

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMPORT_CHECK = pathlib.Path(__file__).with_name("import_check.py")

# charmcraft.yaml platform -> machine; ubuntu@24.04 ships CPython 3.12 and glibc 2.39.
ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}
PYTHON = (3, 12)
GLIBC = (2, 39)


@dataclasses.dataclass(frozen=True)
class Pin:
    """One package of the runtime set, and the wheel the build would install."""

    name: str
    version: str
    wheel: str | None  # file name; None: the lock has no wheel for the platform
    size: int  # bytes, 0 without a wheel


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without tox's PYTHONPATH (src/ would shadow tools' modules)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return env | {"UV_PYTHON_DOWNLOADS": "never"} | extra


def uv(project: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run uv in ``project``; the caller checks the result."""
    return subprocess.run(
        [find_uv_bin(), *args],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def export(project: pathlib.Path, *, hashes: bool) -> str:
    """``uv export`` of the runtime set (no project, no dev group) as requirements.txt."""
    args = ["export", "--frozen", "--no-emit-project", "--no-dev", "--quiet"]
    result = uv(project, *args, *([] if hashes else ["--no-hashes"]))
    if result.returncode:
        raise RuntimeError(f"uv export failed:\n{result.stderr}")
    return result.stdout


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a requirements file: no comments, hashes or blanks."""
    return [
        line.rstrip(" \\")
        for line in text.splitlines()
        if line.strip() and not line.startswith((" ", "#", "\t"))
    ]


def marker_environment(arch: str) -> dict[str, str]:
    """PEP 508 marker values of the charm's Python on ``arch`` (amd64 or arm64)."""
    version = ".".join(map(str, PYTHON))
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{version}.0",
        "os_name": "posix",
        "platform_machine": ARCHES[arch],
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": f"{version}.0",
        "python_version": version,
        "sys_platform": "linux",
    }


def runtime_requirements(project: pathlib.Path, arch: str) -> dict[str, str]:
    """Name -> pinned version of every package the build installs on ``arch``."""
    pins = {}
    for line in requirement_lines(export(project, hashes=False)):
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(marker_environment(arch)):
            continue
        (spec,) = req.specifier
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def platform_tags(arch: str) -> list[tags.Tag]:
    """Wheel tags the charm's Python accepts on ``arch``, most preferred first."""
    machine = ARCHES[arch]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    platforms = []
    for minor in range(GLIBC[1], 4, -1):
        platforms.append(f"manylinux_2_{minor}_{machine}")
        if minor in legacy and (machine == "x86_64" or minor == 17):
            platforms.append(f"{legacy[minor]}_{machine}")
    abi = f"cp{PYTHON[0]}{PYTHON[1]}"
    return [
        *tags.cpython_tags(PYTHON, abis=[abi], platforms=platforms),
        *tags.compatible_tags(PYTHON, abi, platforms),
    ]


def lock_packages(project: pathlib.Path) -> dict[tuple[str, str], dict]:
    """(name, version) -> the package's table in uv.lock."""
    lock = tomllib.loads((project / "uv.lock").read_text())
    return {(canonicalize_name(p["name"]), p["version"]): p for p in lock["package"]}


def best_wheel(package: dict, arch: str) -> dict | None:
    """The wheel of a uv.lock package that the charm's Python on ``arch`` prefers."""
    rank = {tag: i for i, tag in enumerate(platform_tags(arch))}
    best, best_rank = None, len(rank)
    for wheel in package.get("wheels", []):
        name = wheel["url"].rsplit("/", 1)[-1]
        wheel_rank = min(rank.get(tag, len(rank)) for tag in parse_wheel_filename(name)[3])
        if wheel_rank < best_rank:
            best, best_rank = wheel, wheel_rank
    return best


def runtime_set(project: pathlib.Path, arch: str) -> list[Pin]:
    """The runtime set on ``arch`` with the locked wheel of each package, sorted by name."""
    packages = lock_packages(project)
    pins = []
    for name, version in sorted(runtime_requirements(project, arch).items()):
        wheel = best_wheel(packages[name, version], arch)
        file = wheel["url"].rsplit("/", 1)[-1] if wheel else None
        pins.append(Pin(name, version, file, wheel["size"] if wheel else 0))
    return pins


def download_wheels(
    project: pathlib.Path, arch: str, target: pathlib.Path
) -> subprocess.CompletedProcess[str]:
    """Install the locked runtime set for ``arch`` into ``target`` from wheels only.

    uv checks every file against the lock's hashes and builds nothing (``--no-build``):
    a package without a cp312 manylinux wheel for the platform fails the command.
    Downloads stay in uv's cache (``~/.cache/uv``), so a second run is quick.
    """
    requirements = target.with_name(f"{target.name}-requirements.txt")
    requirements.write_text(export(project, hashes=True))
    return uv(
        project,
        "pip",
        "install",
        "--target",
        str(target),
        "--python-version",
        ".".join(map(str, PYTHON)),
        "--python-platform",
        f"{ARCHES[arch]}-manylinux_{GLIBC[0]}_{GLIBC[1]}",
        "--no-build",
        "--no-deps",
        "--require-hashes",
        "--requirement",
        str(requirements),
    )


def installed_wheel_tags(target: pathlib.Path) -> dict[str, set[str]]:
    """Distribution name -> the tags in its WHEEL file, for everything under ``target``."""
    found = {}
    for wheel_file in target.glob("*.dist-info/WHEEL"):
        dist_info = wheel_file.parent.name.removesuffix(".dist-info")
        name = canonicalize_name(dist_info.rsplit("-", 1)[0])
        lines = wheel_file.read_text().splitlines()
        found[name] = {line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")}
    return found


def charm_python() -> str:
    """A CPython 3.12 (the charm's) for the runtime venv; else the Python running this.

    ``PACK_PYTHON`` wins; then python3.12 on PATH, then a pyenv 3.12. Only the import
    check uses it: an older Python still tells whether every import resolves.
    """
    if os.environ.get("PACK_PYTHON"):
        return os.environ["PACK_PYTHON"]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [
        shutil.which("python3.12"),
        "/usr/bin/python3.12",
        *sorted(glob.glob(f"{pyenv}/versions/3.12*/bin/python3.12"), reverse=True),
    ]
    for candidate in filter(None, candidates):
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            env=clean_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return sys.executable


def build_runtime_venv(project: pathlib.Path, venv: pathlib.Path, python: str) -> pathlib.Path:
    """A venv holding the locked runtime set and nothing else; returns its python."""
    created = uv(project, "venv", "--quiet", "--python", python, str(venv))
    if created.returncode:
        raise RuntimeError(f"uv venv failed:\n{created.stderr}")
    requirements = venv.with_name(f"{venv.name}-requirements.txt")
    requirements.write_text(export(project, hashes=True))
    python_path = venv / "bin" / "python"
    installed = uv(
        project,
        "pip",
        "install",
        "--quiet",
        "--python",
        str(python_path),
        "--no-build",  # a missing wheel is the wheel checks' finding, not a 10-minute build
        "--no-deps",
        "--require-hashes",
        "--requirement",
        str(requirements),
    )
    if installed.returncode:
        raise RuntimeError(f"uv pip install failed:\n{installed.stderr}")
    return python_path


def import_check(python: pathlib.Path, project: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run import_check.py in ``python`` (isolated: no PYTHONPATH, no user site, no .pyc)."""
    return subprocess.run(
        [str(python), "-I", "-B", str(IMPORT_CHECK), str(project / "src"), str(project / "lib")],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def _table(pins: list[Pin]) -> Iterator[str]:
    width = max(len(f"{p.name}=={p.version}") for p in pins)
    for pin in pins:
        size = f"{pin.size / 1024:9.1f} KiB" if pin.wheel else "  NO WHEEL"
        yield f"  {f'{pin.name}=={pin.version}':<{width}}  {size}  {pin.wheel or ''}"


def main(project: pathlib.Path) -> int:
    """Print the runtime set per platform; exit 1 if a package has no wheel."""
    missing = 0
    for arch in ARCHES:
        pins = runtime_set(project, arch)
        total = sum(p.size for p in pins)
        print(f"{arch}: {len(pins)} packages, wheels {total / 1024 / 1024:.1f} MiB ({total} B)")
        print("\n".join(_table(pins)))
        missing += sum(p.wheel is None for p in pins)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT))
