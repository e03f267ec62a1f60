"""Pods on one machine: each node gets its own network and mount namespace.

A node is what a Kubernetes pod gives the charm: its own loopback and address
(Trino on 8080/8443 in every node), the image's paths (`/usr/lib/trino`,
`/etc/trino`, `/data/trino`) and Juju's Pebble at `/charm/bin/pebble` with its
socket in `/charm/container`. Pebble runs as root inside the node, as in a pod,
and starts the charm's layer exactly as given.

Nodes reach each other and the test's services over a bridge (`trlive0`) whose
addresses exist only inside this machine's namespaces.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator

BRIDGE = "trlive0"
# Several live runs may share the machine (developers in parallel): each takes a slot,
# which picks its pods' names and addresses.
SLOT = int(os.environ.get("TRINO_LIVE_SLOT", "0"))
SUBNET = "10.231.7"  # addresses of this test's own namespaces only
HOST_IP = f"{SUBNET}.1"  # the root namespace on the bridge: PostgreSQL, S3, LDAP, Prometheus
MOUNT_POINTS = ("/etc/trino", "/usr/lib/trino", "/data/trino", "/charm/bin", "/charm/container")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.stdout


def ensure_user(name: str = "trino") -> None:
    """The image's `trino` user, which the charm's layer names (Pebble resolves it)."""
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        _run(
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/bin/false",
            name,
        )


def ensure_bridge() -> None:
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        return
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the block in the node's network namespace (the charm shares the pod's network).

    setns applies to the calling thread only; sockets opened in the block belong to
    the node, so `localhost:8080` is that node's Trino. Unix sockets are paths, so the
    Pebble client still reaches the node's Pebble.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns}")
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


@dataclasses.dataclass
class Pod:
    """One node: its namespaces, its folders, its Pebble."""

    name: str  # e.g. trino-0: also its host name
    index: int
    root: pathlib.Path  # host folder holding etc/, data/, charm-container/, pebble/
    trino_home: pathlib.Path
    java_home: pathlib.Path
    pebble_binary: pathlib.Path
    hosts_file: pathlib.Path
    process: subprocess.Popen | None = None

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{10 + self.index}"

    @property
    def netns(self) -> str:
        return f"trlive{SLOT}-{self.name}"

    @property
    def veth(self) -> str:
        return f"vtl{self.index}"

    @property
    def etc(self) -> pathlib.Path:
        return self.root / "etc"

    @property
    def socket(self) -> str:
        return str(self.root / "charm-container" / "pebble.socket")

    @property
    def pebble_log(self) -> pathlib.Path:
        return self.root / "pebble.log"

    def create(self) -> None:
        ensure_bridge()
        for folder in ("etc", "data", "charm-container", "charm-bin", "pebble", "tmp"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").chmod(0o1777)  # a container's own /tmp
        shutil.chown(self.root / "data", "trino", "trino")
        shutil.copy2(self.pebble_binary, self.root / "charm-bin" / "pebble")
        for point in MOUNT_POINTS:
            pathlib.Path(point).mkdir(parents=True, exist_ok=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
        _run("ip", "netns", "add", self.netns)
        _run(
            "ip",
            "link",
            "add",
            self.veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.netns,
        )
        _run("ip", "link", "set", self.veth, "master", BRIDGE, "up")
        for command in (
            ("ip", "link", "set", "lo", "up"),
            ("ip", "addr", "add", f"{self.ip}/24", "dev", "eth0"),
            ("ip", "link", "set", "eth0", "up"),
        ):
            _run("ip", "netns", "exec", self.netns, *command)
        self.start_pebble()

    def start_pebble(self) -> None:
        """Start the node's Pebble as Juju does (`--hold`: services wait for the charm)."""
        binds = [
            (self.root / "etc", "/etc/trino"),
            (self.trino_home, "/usr/lib/trino"),
            (self.root / "data", "/data/trino"),
            (self.root / "charm-bin", "/charm/bin"),
            (self.root / "charm-container", "/charm/container"),
            (self.hosts_file, "/etc/hosts"),
            (self.root / "tmp", "/tmp"),  # each container has its own
        ]
        script = " && ".join(
            [
                *(f"mount --bind {source} {target}" for source, target in binds),
                "mount -o remount,bind,ro /usr/lib/trino",
                "exec /charm/bin/pebble run --create-dirs --hold --verbose",
            ]
        )
        env = {
            "PATH": f"{self.java_home}/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "JAVA_HOME": str(self.java_home),
            "HOSTNAME": self.name,
            "LANG": "C.UTF-8",
            "PEBBLE": str(self.root / "pebble"),
            "PEBBLE_SOCKET": "/charm/container/pebble.socket",
        }
        with self.pebble_log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.netns,
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--uts",
                    "sh",
                    "-c",
                    f"hostname {self.name} && {script}",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Pebble did not start on {self.name}: {self.pebble_log.read_text()}"
                )
            time.sleep(0.1)

    def stop_pebble(self, timeout: float = 60) -> int | None:
        """SIGTERM to Pebble (what Kubernetes does to the container); its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        return code

    def destroy(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        # Whatever Pebble started (Trino's JVM) lives in the node's network namespace.
        pids = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        self.process = None
