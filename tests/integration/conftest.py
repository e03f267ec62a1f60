"""Fixtures for the trino-k8s integration tests.

The tests drive a real Juju controller through Jubilant (which shells out to the `juju` CLI).
Where no controller is reachable (a laptop or CI job without Juju) every test is SKIPPED with
the reason, instead of erroring out in the first `juju` call.
"""

from __future__ import annotations

import logging
import os
import pathlib
import platform
import shutil
import subprocess
from collections.abc import Iterator

import jubilant
import pytest

logger = logging.getLogger(__name__)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# `juju models` talks to the controller API; an unreachable controller makes it hang on the
# dial timeout, so give up after this many seconds and skip.
CONTROLLER_PROBE_TIMEOUT = 60
# `charmcraft pack` builds in a LXD container or multipass VM, which can take a while.
PACK_TIMEOUT = 30 * 60
# Default for Juju.wait() when a test gives no timeout: Trino is slow to start.
DEFAULT_WAIT_TIMEOUT = 15 * 60
# How much of `juju debug-log` to print when a test of the module failed.
DEBUG_LOG_LINES = 1000

# Host machine architecture (platform.machine()) to Juju/charmcraft architecture.
_CHARM_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --keep-models, to inspect the model after a failed run."""
    parser.addoption(
        "--keep-models",
        action="store_true",
        default=False,
        help="keep the temporary Juju models instead of destroying them after the tests",
    )


def _controller_unavailable_reason() -> str | None:
    """Return why no Juju controller can be used, or None when one answers.

    `juju show-controller` only reads the local client store, so it succeeds even when the
    controller is gone; `juju models` has to ask the controller, so it proves it is reachable.
    """
    juju_bin = shutil.which("juju")
    if juju_bin is None:
        return "no Juju controller reachable (juju not on PATH)"
    try:
        subprocess.run(
            [juju_bin, "models", "--format", "json"],
            check=True,
            capture_output=True,
            text=True,
            timeout=CONTROLLER_PROBE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        timeout = CONTROLLER_PROBE_TIMEOUT
        return f"no Juju controller reachable (`juju models` timed out after {timeout}s)"
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or exc.stdout or "").strip().splitlines()
        detail = lines[0] if lines else f"exit code {exc.returncode}"
        return f"no Juju controller reachable (`juju models` failed: {detail})"
    return None


@pytest.fixture(scope="session", autouse=True)
def juju_controller() -> None:
    """Skip every integration test, with the reason, when no Juju controller is reachable.

    Autouse and session-scoped: it is checked once, before any other fixture (so before a
    possibly slow `charmcraft pack`), and pytest re-raises the cached skip for each test.
    """
    reason = _controller_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def juju(request: pytest.FixtureRequest) -> Iterator[jubilant.Juju]:
    """A Juju client on a fresh temporary model, destroyed afterwards unless --keep-models.

    A new model per module keeps runs independent of whatever else lives on the controller.
    When a test failed, the end of `juju debug-log` is printed, as it holds the charm's logs.
    """
    keep = bool(request.config.getoption("--keep-models", default=False))
    with jubilant.temp_model(keep=keep) as juju:
        juju.wait_timeout = DEFAULT_WAIT_TIMEOUT
        logger.info("using temporary model %s (keep=%s)", juju.model, keep)
        yield juju
        if request.session.testsfailed:
            try:
                print(juju.debug_log(limit=DEBUG_LOG_LINES), end="")
            except jubilant.CLIError as exc:
                logger.warning("could not fetch juju debug-log: %s", exc)


def _find_packed_charm() -> pathlib.Path | None:
    """Return a *.charm in the repo root, preferring one built for this machine's arch."""
    charms = sorted(REPO_ROOT.glob("*.charm"))
    if not charms:
        return None
    arch = _CHARM_ARCHES.get(platform.machine().lower(), "")
    for charm in charms:
        if arch and charm.stem.endswith(arch):
            return charm
    return charms[0]


@pytest.fixture(scope="session")
def charm_path() -> pathlib.Path:
    """The packed charm to deploy: $CHARM_PATH, else a *.charm in the repo root, else packed.

    CI packs once and passes CHARM_PATH; locally an existing *.charm is reused so that a run
    does not repack each time. Packing needs charmcraft, so the tests skip without it.
    """
    env_path = os.environ.get("CHARM_PATH")
    if env_path:
        path = pathlib.Path(env_path).resolve()
        if not path.is_file():
            pytest.fail(f"CHARM_PATH={env_path} is not a file")
        return path

    path = _find_packed_charm()
    if path is not None:
        return path

    charmcraft = shutil.which("charmcraft")
    if charmcraft is None:
        pytest.skip("no packed charm: set CHARM_PATH or install charmcraft to pack one")
    logger.info("packing the charm with %s in %s", charmcraft, REPO_ROOT)
    subprocess.run([charmcraft, "pack"], cwd=REPO_ROOT, check=True, timeout=PACK_TIMEOUT)
    path = _find_packed_charm()
    if path is None:
        pytest.fail(f"`charmcraft pack` produced no *.charm in {REPO_ROOT}")
    return path


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Remember the first failed test of each module (see pytest_runtest_setup).

    Skips do not count: without a controller every test must stay SKIPPED with its reason.
    """
    excinfo = call.excinfo
    if excinfo is None or excinfo.errisinstance(pytest.skip.Exception):
        return
    module = item.parent
    if module is not None and not hasattr(module, "_first_failed"):
        module._first_failed = item.name  # type: ignore[attr-defined]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip the rest of a module once one of its tests failed.

    The tests of a module build on each other in one model (deploy, then query, then
    reconfigure...). After a failure the later ones would only wait for their full timeouts
    on a broken deployment and bury the real error under more failures.
    """
    first_failed = getattr(item.parent, "_first_failed", None)
    if first_failed is not None:
        pytest.skip(f"{first_failed} failed and this test builds on it")
