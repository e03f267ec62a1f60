"""Fixtures of the live tier: real Trino under real Pebble, one namespace pair per pod.

Nothing here is skipped: a missing component fails the tier with the reason
(tests/live/README.md says what each one needs and how `.ci/run` installs it).
"""

from __future__ import annotations

import os
import pathlib
import socket
import sys
import time
from collections.abc import Callable, Iterator

import pytest

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

import components  # noqa: E402
import netlab  # noqa: E402
from juju import MODEL, Juju  # noqa: E402
from kube import Kubernetes  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError(
            "the live tier makes network and mount namespaces: run it as root (CI does)"
        )


@pytest.fixture(scope="session")
def trino_home() -> pathlib.Path:
    return components.trino_home()


@pytest.fixture(scope="session")
def java_home() -> pathlib.Path:
    return components.java_home()


@pytest.fixture(scope="session")
def pebble_binary() -> pathlib.Path:
    return components.pebble_binary()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The bridge, the trino user and the hosts file every pod shares."""
    netlab.ensure_user()
    netlab.ensure_bridge()
    root = tmp_path_factory.mktemp("lab")
    (root / "hosts").write_text("127.0.0.1 localhost\n")
    return root


class Pods:
    """Creates pods (network + mount namespace, Pebble) and removes them at the end."""

    created = 0  # over the whole session

    def __init__(self, lab: pathlib.Path, trino_home, java_home, pebble_binary):
        self.lab = lab
        self.trino_home = trino_home
        self.java_home = java_home
        self.pebble_binary = pebble_binary
        self.pods: list[netlab.Pod] = []
        self.services: dict[str, str] = {}  # Service host name -> its virtual IP

    def __call__(self, app: str, number: int) -> netlab.Pod:
        name = f"{app}-{number}"
        # Pods of earlier modules are gone, but never reuse their folders: a launcher pid
        # file left there may name a live process of this machine.
        Pods.created += 1
        root = self.lab / f"{name}-{Pods.created}"
        index = netlab.SLOT * 20 + Pods.created % 20
        pod = netlab.Pod(
            name,
            index,
            root,
            self.trino_home,
            self.java_home,
            self.pebble_binary,
            self.lab / "hosts",
        )
        pod.create()
        self.pods.append(pod)
        self._write_hosts()
        return pod

    def fqdn(self, pod: netlab.Pod) -> str:
        app = pod.name.rsplit("-", 1)[0]
        return f"{pod.name}.{app}-endpoints.{MODEL}.svc.cluster.local"

    def _write_hosts(self) -> None:
        lines = ["127.0.0.1 localhost", f"{netlab.HOST_IP} lab-host"]
        lines += [f"{pod.ip} {self.fqdn(pod)} {pod.name}" for pod in self.pods]
        lines += [f"{ip} {name}" for name, ip in self.services.items()]
        # Same inode: every pod's bind-mounted /etc/hosts sees the new names.
        with (self.lab / "hosts").open("w") as out:
            out.write("\n".join(lines) + "\n")

    def set_services(self, services: dict[str, str]) -> None:
        """Kubernetes DNS for the Services: `<app>.<model>.svc.cluster.local`."""
        self.services = dict(services)
        self._write_hosts()

    def destroy(self) -> None:
        for pod in self.pods:
            pod.destroy()
        self.pods.clear()


@pytest.fixture(scope="module")
def pods(lab, trino_home, java_home, pebble_binary) -> Iterator[Pods]:
    factory = Pods(lab, trino_home, java_home, pebble_binary)
    yield factory
    factory.destroy()


@pytest.fixture(scope="module")
def kube(pods: Pods, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubernetes]:
    """The namespace's API server, controllers and Services (tests/live/kube.py)."""
    kubernetes = Kubernetes(MODEL, tmp_path_factory.mktemp("kube"), pods.set_services)
    yield kubernetes
    kubernetes.close()


@pytest.fixture(scope="module")
def juju(kube: Kubernetes) -> Iterator[Juju]:
    with pytest.MonkeyPatch.context() as patch:
        model = Juju(patch, kube)
        yield model
    # What Juju delivered in this module (the report shows it with -s).
    counts: dict[str, int] = {}
    for _, event in model.hooks:
        counts[event] = counts.get(event, 0) + 1
    print(f"\nhooks run: {dict(sorted(counts.items()))}; rolls: {model.rolls}")


@pytest.fixture(scope="module")
def pod_names(pods: Pods) -> Iterator[None]:
    """Resolve the pods' FQDNs (their certificates' names) as Kubernetes DNS would.

    The test process (and the charm's hooks it runs) reads the machine's /etc/hosts,
    not the pods' own: map the names the pods' hosts file gives to their addresses.
    """
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        for pod in pods.pods:
            if host in (pods.fqdn(pod), pod.name):
                host = pod.ip
        host = pods.services.get(host, host)
        return original(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield


@pytest.fixture(scope="module")
def s3(lab):
    """moto's S3 server on the pods' side of the bridge; its endpoint URL."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 (heavy)
    from tests.unit import pg  # noqa: PLC0415
    from werkzeug.serving import WSGIRequestHandler  # noqa: PLC0415

    # moto's server answers `Expect: 100-continue` twice (http.server, then werkzeug):
    # the AWS SDK's async client (Trino's exchange) takes the second 100 for the final
    # answer ("S3Exception: Status Code: 100", getmoto/moto#9975). Werkzeug's one is enough.
    WSGIRequestHandler.handle_expect_100 = lambda self: True  # type: ignore[method-assign]

    port = pg.free_port(netlab.HOST_IP)
    server = ThreadedMotoServer(ip_address=netlab.HOST_IP, port=port, verbose=False)
    server.start()
    yield f"http://{netlab.HOST_IP}:{port}"
    server.stop()


def wait_for(
    what: str, condition: Callable[[], object], timeout: float = 180, poll: float = 1
) -> object:
    """Poll until `condition()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def dump_pod_logs(pods: Pods) -> str:  # shown when a test fails (see pytest_runtest_makereport)
    parts = []
    for pod in pods.pods:
        log = pod.pebble_log.read_text(errors="replace") if pod.pebble_log.exists() else ""
        parts.append(
            f"--- {pod.name} pebble log (last 60 lines) ---\n" + "\n".join(log.splitlines()[-60:])
        )
    return "\n".join(parts)
