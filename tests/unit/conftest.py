"""Fixtures shared by the charm-level tests."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import ops
import pytest
from ops import testing
from ops._private.harness import _TestingPebbleClient

import k8s_resources
import restarts
import status
import workload
from charm import TrinoK8sCharm


@pytest.fixture
def ctx() -> testing.Context[TrinoK8sCharm]:
    """A context that reads the charm's real metadata, config and actions."""
    return testing.Context(TrinoK8sCharm)


@pytest.fixture
def etc(tmp_path: pathlib.Path) -> pathlib.Path:
    """The host side of the container's /etc/trino: it persists across ctx.run calls."""
    path = tmp_path / "etc-trino"
    path.mkdir()
    return path


def mounted_container(etc: pathlib.Path) -> testing.Container:
    """A reachable trino container whose /etc/trino is ``etc`` on the host."""
    return testing.Container(
        "trino",
        can_connect=True,
        mounts={"etc": testing.Mount(location="/etc/trino", source=etc)},
    )


@pytest.fixture
def container(etc: pathlib.Path) -> testing.Container:
    """A reachable trino container with /etc/trino mounted."""
    return mounted_container(etc)


def worker_pod(tmp_path: pathlib.Path) -> tuple[pathlib.Path, testing.Container]:
    """A second unit's /etc/trino (a worker beside the coordinator) and its container."""
    etc = tmp_path / "worker"
    etc.mkdir()
    return etc, mounted_container(etc)


@dataclasses.dataclass
class FakeTrino:
    """What Trino's /v1/info answers; None means nothing listens on port 8080."""

    info: workload.TrinoInfo | None = dataclasses.field(
        default_factory=lambda: workload.TrinoInfo(starting=False, version="483")
    )
    probes: int = 0

    def __call__(self, timeout: float = 2.0) -> workload.TrinoInfo | None:
        self.probes += 1
        return self.info


@pytest.fixture
def trino(monkeypatch: pytest.MonkeyPatch) -> FakeTrino:
    """Trino's HTTP endpoint, faked: by default up and finished starting."""
    fake = FakeTrino()
    monkeypatch.setattr(status, "probe", fake)
    monkeypatch.setattr(restarts, "probe", fake)
    return fake


@dataclasses.dataclass
class PebbleCalls:
    """Service starts and restarts the charm asked Pebble for."""

    restarts: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    replans: int = 0
    stops: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    # How long the charm waited on each stop of a service (ops' Container.stop: 30 s).
    stop_waits: list[float] = dataclasses.field(default_factory=list)


@pytest.fixture
def pebble_calls(monkeypatch: pytest.MonkeyPatch, trino: FakeTrino) -> PebbleCalls:
    """Count (re)starts: the testing Pebble applies them but keeps no history."""
    calls = PebbleCalls()

    def spy(name: str, record: Callable[..., None]):
        original = getattr(ops.Container, name)

        def wrapper(self: ops.Container, *args: str, **kwargs: object):
            record(*args)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(ops.Container, name, wrapper)

    spy("restart", lambda *names: calls.restarts.append(names))
    spy("stop", lambda *names: calls.stops.append(names))
    spy("replan", lambda: setattr(calls, "replans", calls.replans + 1))
    stop_services = _TestingPebbleClient.stop_services

    def timed_stop(self, services, timeout=30.0, delay=0.1):
        calls.stop_waits.append(timeout)
        return stop_services(self, services, timeout, delay)

    monkeypatch.setattr(_TestingPebbleClient, "stop_services", timed_stop)
    return calls


def read_files(etc: pathlib.Path) -> dict[str, str]:
    """Every file under the mounted /etc/trino, by path relative to it.

    Binary files (the JVM truststore) come back with their bytes kept as escapes.
    """
    return {
        str(path.relative_to(etc)): path.read_bytes().decode("utf-8", "surrogateescape")
        for path in sorted(etc.rglob("*"))
        if path.is_file()
    }


def properties(text: str) -> dict[str, str]:
    """A .properties file as a dict (enough of the format for our files)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def cluster_secrets(state: testing.State) -> set[testing.Secret]:
    """The cluster secret a leader made (shared secret): keep it when replacing secrets."""
    return {secret for secret in state.secrets if secret.label == "trino-cluster"}


def _record_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple]:
    """Replace k8s_resources.<name> with a recorder of its arguments (no Kubernetes API)."""
    calls: list[tuple] = []

    def record(*args: object) -> bool:
        calls.append(args)
        return True

    monkeypatch.setattr(k8s_resources, name, record)
    return calls


@pytest.fixture(autouse=True)
def kubernetes_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """The StatefulSet patches the charm asks for (no Kubernetes API here).

    test_k8s_resources.py overrides this fixture to drive the real patching code
    against a fake lightkube client.
    """
    return _record_calls(monkeypatch, "apply_resources")


@pytest.fixture(autouse=True)
def service_patches(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """The Service narrowings the charm asks for (overridden in test_k8s_resources.py too)."""
    return _record_calls(monkeypatch, "select_pod")


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the whole session (skipped only without the binaries)."""
    import pg  # noqa: PLC0415  (pg8000 is imported only by the tests that need it)

    bindir = pg.server_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found: `apt-get install postgresql` or set PGBIN "
            "to the folder holding initdb"
        )
    with pg.running_server(bindir) as server:
        yield server


@pytest.fixture
def tls(ctx, container, trino, pebble_calls) -> tuple[testing.State, testing.Relation]:
    """A leader whose certificate request the provider has just signed."""
    relation = testing.Relation("certificates", remote_app_name="self-signed-certificates")
    state = ctx.run(
        ctx.on.relation_created(relation),
        testing.State(leader=True, containers={container}, relations={relation}),
    )
    from providers import sign  # noqa: PLC0415 (providers imports this module)

    signed = sign(state, relation)
    state = ctx.run(
        ctx.on.relation_changed(signed), dataclasses.replace(state, relations={signed})
    )
    return state, signed


@pytest.fixture
def peers() -> testing.PeerRelation:
    return testing.PeerRelation("trino-peers")


@pytest.fixture
def schema_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """The metastore bootstraps the charm ran (database, user, password), none really."""
    import metastore  # noqa: PLC0415

    calls: list[tuple[str, str, str]] = []

    def fake(database, username, password, **_):
        calls.append((database.name, username, password))

    monkeypatch.setattr(metastore, "create_schema", fake)
    return calls
