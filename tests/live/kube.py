"""A small stand-in for the Kubernetes the charm meets, written from Kubernetes' and Juju's source.

What it plays, and where each piece comes from (juju/juju 3.6, kubernetes/kubernetes):

- **The API server**, on the pods' side of the bridge: the StatefulSet and the Service
  Juju made for each application, read (GET) and changed (PATCH, strategic merge) over
  HTTP exactly as the charm's lightkube client sends it, with the application's service
  account as the caller: refused (403) until `juju trust`.
- **Juju's objects**: the StatefulSet with Juju's pod template (terminationGracePeriodSeconds
  30, Parallel pod management, RollingUpdate by default) and the application's ClusterIP
  Service selecting every pod of the application. Juju re-applies both with a strategic
  merge patch whenever its provisioning info changes (`juju_apply`).
- **The StatefulSet controller**: each pod records the template revision and the grace it
  was made with; a rolling update replaces the highest ordinal first and waits for each new
  pod to be Ready before the next (`roll`).
- **The kubelet**: pod deletion sends SIGTERM to the container's first process (Pebble) and
  SIGKILLs what is left of the pod after the pod's own terminationGracePeriodSeconds; the
  readiness probe asks the workload Pebble's `/v1/health?level=ready`.
- **The Service** (kube-proxy): a virtual IP whose connections go to a Ready pod that
  matches the Service's selector, and a host name `<app>.<model>.svc.cluster.local`
  that resolves to that IP.

Not modelled: a recreated pod keeps its address (Kubernetes may give it a new one; the
charm names pods by their stable DNS names only), the charm container's own Pebble and
probes (its pod is Ready when the workload container is), and the EndpointSlice
controller's delay (the proxy reads readiness at each connection, at most 1 s old).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import http.client
import http.server
import json
import os
import pathlib
import random
import re
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from netlab import BRIDGE, HOST_IP, SLOT, SUBNET, Pod

# juju/juju caas/kubernetes/provider/application/application.go, ApplicationPodSpec:
# `TerminationGracePeriodSeconds: pointer.Int64(30)`.
JUJU_GRACE = 30
# kubernetes pkg/controller/statefulset/stateful_set_utils.go: the labels the controller
# puts on each pod it makes (StatefulSetPodNameLabel, ControllerRevisionHashLabelKey).
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
REVISION_LABEL = "controller-revision-hash"
# juju/juju caas/kubernetes/provider/application/application.go, selectorLabels().
APP_LABEL = "app.kubernetes.io/name"
SERVICE_PORTS = (8080, 8443)
# kubernetes staging/src/k8s.io/api/core/v1/types.go: the patchMergeKey of the lists a
# strategic merge patch merges item by item (every other list is replaced whole).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "port",
}


def strategic_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Apply a strategic merge patch in place.

    kubernetes staging/src/k8s.io/apimachinery/pkg/util/strategicpatch/patch.go:
    maps merge key by key, a null deletes the key, lists with a patchMergeKey merge
    item by item on that key, and other values (lists included) replace.
    """
    for key, value in patch.items():
        current = target.get(key)
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            strategic_merge(current, value)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(current, list):
            merge_key = MERGE_KEYS[key]
            for item in value:
                match = next((c for c in current if c.get(merge_key) == item.get(merge_key)), None)
                if match is None:
                    current.append(copy.deepcopy(item))
                else:
                    strategic_merge(match, item)
        else:
            target[key] = copy.deepcopy(value)


def juju_statefulset(app: str, model: str, charm_version: int) -> dict[str, Any]:
    """The StatefulSet Juju makes for a sidecar application.

    juju/juju caas/kubernetes/provider/application/application.go (Ensure,
    ApplicationPodSpec) and resources/statefulset.go: Parallel pod management, no
    update strategy (Kubernetes' default: RollingUpdate, partition 0), the template's
    labels are selectorLabels(), its grace 30 s; the charm-init container carries
    `--charm-modified-version`, so a refresh changes the template and rolls the pods.
    """
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": app,
            "namespace": model,
            "labels": {APP_LABEL: app, "app.kubernetes.io/managed-by": "juju"},
        },
        "spec": {
            "selector": {"matchLabels": {APP_LABEL: app}},
            "serviceName": f"{app}-endpoints",
            "podManagementPolicy": "Parallel",
            "template": {
                "metadata": {"labels": {APP_LABEL: app}},
                "spec": {
                    "terminationGracePeriodSeconds": JUJU_GRACE,
                    "initContainers": [
                        {
                            "name": "charm-init",
                            "args": ["init", f"--charm-modified-version={charm_version}"],
                        }
                    ],
                    "containers": [
                        {"name": "charm", "image": "jujusolutions/charm-base"},
                        {"name": "trino", "image": "trinodb/trino:483"},
                    ],
                },
            },
        },
    }


def juju_service(app: str, model: str) -> dict[str, Any]:
    """The application's Service: juju/juju application.go, configureDefaultService.

    ClusterIP, selecting every pod of the application (selectorLabels()); re-applied by
    every Ensure with a strategic merge patch (resources/service.go, Service.Apply).
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "namespace": model, "labels": {APP_LABEL: app}},
        "spec": {
            "type": "ClusterIP",
            "selector": {APP_LABEL: app},
            "ports": [{"name": "placeholder", "port": 65535}],
        },
    }


def revision(template: dict[str, Any]) -> str:
    """A pod template's controller revision (pkg/controller/history, HashControllerRevision)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


@dataclasses.dataclass
class PodRecord:
    """What the API server knows of one pod: what it was made from."""

    pod: Pod
    app: str
    ordinal: int
    revision: str
    grace: int
    labels: dict[str, str]


@dataclasses.dataclass
class Deletion:
    """How a pod went: when its Pebble exited, and whether the kubelet had to SIGKILL."""

    pod: str
    grace: int
    seconds: float
    killed: bool


class Kubernetes:
    """One namespace: the API server, the StatefulSet controller, the kubelet, Services."""

    def __init__(self, model: str, folder: pathlib.Path, hosts: Callable[[dict[str, str]], None]):
        self.model = model
        self.folder = folder
        self.statefulsets: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, PodRecord] = {}
        self.trusted: set[str] = set()
        self.patches: list[tuple[str, str, dict]] = []  # (kind, name, patch) as received
        self.deletions: list[Deletion] = []
        self._charm_versions: dict[str, int] = {}
        self._vips: dict[str, str] = {}
        self._proxies: list[socketserver.TCPServer] = []
        self._hosts = hosts
        self._lock = threading.RLock()
        self.api = _ApiServer(self)
        self.url = f"http://{HOST_IP}:{self.api.server_address[1]}"
        threading.Thread(target=self.api.serve_forever, daemon=True).start()

    # Juju's side: the objects it makes and re-applies.

    def kubeconfig(self, app: str) -> str:
        """The application's service account, as lightkube finds it (KUBECONFIG)."""
        path = self.folder / f"kubeconfig-{app}.yaml"
        if not path.exists():
            path.write_text(
                json.dumps(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [{"name": "live", "cluster": {"server": self.url}}],
                        "users": [{"name": app, "user": {"token": app}}],
                        "contexts": [
                            {
                                "name": "live",
                                "context": {
                                    "cluster": "live",
                                    "user": app,
                                    "namespace": self.model,
                                },
                            }
                        ],
                        "current-context": "live",
                    }
                )
            )
        return str(path)

    def juju_apply(self, app: str, *, refresh: bool = False) -> None:
        """What Juju's provisioner does on each change of provisioning info.

        juju/juju worker/caasapplicationprovisioner/ops.go (appAlive: Ensure whenever
        the ApplicationConfig differs from the last applied, which a refresh, trust,
        constraints or a restart of the provisioner all do) and
        caas/kubernetes/provider/application/application.go (Ensure). The StatefulSet
        goes through resources/statefulset.go (Apply): Juju reads the live object,
        puts its own template (and replicas, update strategy, minReadySeconds) in it
        and sends the whole object as a strategic merge patch. So the grace is 30 s
        again, while what Juju leaves at a zero value is dropped from the JSON and
        keeps the charm's: minReadySeconds 0, a container's empty resources. Here
        that is Juju's template merged in. The Service is re-applied the same way
        (resources/service.go): its selector map merges, the charm's key stays.
        """
        with self._lock:
            version = self._charm_versions.get(app, 0) + int(refresh)
            self._charm_versions[app] = version
            wanted = juju_statefulset(app, self.model, version)
            if app in self.statefulsets:
                strategic_merge(
                    self.statefulsets[app], {"spec": {"template": wanted["spec"]["template"]}}
                )
            else:
                self.statefulsets[app] = wanted
            service = juju_service(app, self.model)
            if app in self.services:
                strategic_merge(self.services[app], {"spec": service["spec"]})
            else:
                self.services[app] = service
                self._serve(app)

    def template(self, app: str) -> dict[str, Any]:
        return self.statefulsets[app]["spec"]["template"]

    # The StatefulSet controller and the kubelet.

    def add_pod(self, app: str, ordinal: int, pod: Pod) -> PodRecord:
        """A pod made from the current template (stateful_set_utils.go, newStatefulSetPod)."""
        with self._lock:
            template = self.template(app)
            labels = {
                **template["metadata"]["labels"],
                POD_NAME_LABEL: pod.name,
                REVISION_LABEL: revision(template),
            }
            record = PodRecord(
                pod,
                app,
                ordinal,
                revision(template),
                int(template["spec"].get("terminationGracePeriodSeconds", JUJU_GRACE)),
                labels,
            )
            self.pods[pod.name] = record
            return record

    def delete_pod(self, name: str, on_sigterm: Callable[[], None] | None = None) -> Deletion:
        """The kubelet deletes a pod: SIGTERM, then SIGKILL after the pod's grace.

        kubernetes pkg/kubelet/kuberuntime/kuberuntime_container.go (killContainer): the
        grace is the pod's own terminationGracePeriodSeconds, fixed when the pod was made
        (pkg/apis/core/validation ValidatePodUpdate refuses to change it). SIGTERM reaches
        each container's first process at once: the trino container's Pebble, and the
        charm container's agent (``on_sigterm``: the hook Juju runs then). At the end the
        container runtime kills what is left in the pod, whatever process group it is in.
        """
        record = self.pods.pop(name)
        pod = record.pod
        started = time.monotonic()
        process = pod.process
        hook = _Hook(on_sigterm)
        if process is not None and process.poll() is None:
            process.terminate()
        hook.start()
        killed = False
        if process is not None:
            try:
                process.wait(timeout=record.grace)
            except subprocess.TimeoutExpired:
                killed = True
        hook.join(max(1.0, record.grace - (time.monotonic() - started)))
        seconds = time.monotonic() - started
        killed = _kill_what_is_left(pod) or killed
        if process is not None:
            process.wait(timeout=10)
        pod.process = None
        with contextlib.suppress(OSError):
            os.unlink(pod.socket)
        deletion = Deletion(name, record.grace, seconds, killed)
        self.deletions.append(deletion)
        hook.raise_failure()  # the hook the pod ran as it went must not have failed
        return deletion

    def recreate_pod(self, record: PodRecord) -> PodRecord:
        """The pod made again: the same name, fresh containers, the current template."""
        pod = record.pod
        for folder in ("etc", "data", "tmp", "charm-container"):
            shutil.rmtree(pod.root / folder, ignore_errors=True)
            (pod.root / folder).mkdir(parents=True)
        (pod.root / "tmp").chmod(0o1777)
        shutil.chown(pod.root / "data", "trino", "trino")
        pod.start_pebble()
        return self.add_pod(record.app, record.ordinal, pod)

    def ready(self, name: str) -> bool:
        """The readiness probe Juju gives the workload container: Pebble's health, level ready.

        juju/juju caas/kubernetes/provider/application/application.go: the probe is
        `/v1/health?level=ready` on the workload Pebble (port 38813 + i; here its socket).
        """
        record = self.pods.get(name)
        if record is None or record.pod.process is None or record.pod.process.poll() is not None:
            return False
        # Pebble answers 200 when healthy and 502 when not. A plain connection, closed
        # here: ops' client leaves the socket of an error answer open.
        connection = _PebbleConnection(record.pod.socket)
        try:
            connection.request("GET", "/v1/health?level=ready")
            response = connection.getresponse()
            body = json.loads(response.read() or b"{}")
        except (OSError, ValueError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        return response.status == 200 and bool(body.get("result", {}).get("healthy"))

    def current_revision(self, app: str) -> str:
        with self._lock:
            return revision(self.template(app))

    def outdated(self, app: str) -> bool:
        """Whether a pod of ``app`` was made from an older template than the current one."""
        if app not in self.statefulsets:
            return False
        update = self.current_revision(app)
        with self._lock:
            return any(r.revision != update for r in self.pods.values() if r.app == app)

    def roll(
        self,
        app: str,
        on_sigterm: Callable[[PodRecord], None],
        on_new_pod: Callable[[PodRecord], None],
        timeout: float = 900,
    ) -> list[tuple[str, int]]:
        """A rolling update of the StatefulSet: every pod made again from the newest template.

        kubernetes pkg/controller/statefulset/stateful_set_control.go (updateStatefulSet):
        from the highest ordinal down, a pod of an older revision is deleted and made
        again, and the controller goes no further while a pod is unavailable (not Ready
        for minReadySeconds), whatever the pod management policy. The template is read
        afresh at every step, so a patch made meanwhile (by the charm) rolls the pods
        again. Returns (pod, grace) of each deletion, in order.
        """
        deleted = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            update = self.current_revision(app)
            with self._lock:
                pods = sorted(
                    (r for r in self.pods.values() if r.app == app),
                    key=lambda r: r.ordinal,
                    reverse=True,
                )
            for target in pods:
                if target.revision != update:
                    deleted.append((target.pod.name, target.grace))
                    self.delete_pod(target.pod.name, lambda t=target: on_sigterm(t))
                    on_new_pod(self.recreate_pod(target))
                    break
                self._wait_available(app, target.pod.name, deadline)
            else:
                return deleted
        raise TimeoutError(f"the rolling update of {app} did not finish")

    def _wait_available(self, app: str, name: str, deadline: float) -> None:
        """Until the pod has been Ready for the StatefulSet's minReadySeconds.

        kubernetes pkg/controller/statefulset/stateful_set_control.go (isUnavailable)
        and pkg/api/v1/pod/util.go (IsPodAvailable): Ready, and for minReadySeconds
        since it last became Ready; a pod that stops being Ready starts again.
        """
        since = None
        while time.monotonic() < deadline:
            if self.outdated(app):
                return  # a newer template: the controller deletes this pod first
            if not self.ready(name):
                since = None
            elif since is None:
                since = time.monotonic()
            with self._lock:
                wait = self.statefulsets[app]["spec"].get("minReadySeconds", 0)
            if since is not None and time.monotonic() - since >= wait:
                return
            time.sleep(1)
        raise TimeoutError(f"{name} never became available")

    # The Service.

    def endpoints(self, app: str) -> list[Pod]:
        """Ready pods that match the Service's selector (the EndpointSlice controller)."""
        with self._lock:
            selector = self.services[app]["spec"].get("selector") or {}
            chosen = [
                r
                for r in self.pods.values()
                if all(r.labels.get(key) == value for key, value in selector.items())
            ]
        return [r.pod for r in chosen if self.ready(r.pod.name)]

    def service_ip(self, app: str) -> str:
        return self._vips[app]

    def service_host(self, app: str) -> str:
        return f"{app}.{self.model}.svc.cluster.local"

    def _serve(self, app: str) -> None:
        """The Service's virtual IP, forwarded to its endpoints as kube-proxy does.

        kube-proxy (pkg/proxy/iptables) sends each new connection to one ready endpoint,
        chosen at random; with none, the connection is refused. Here a forwarder on the
        bridge does the same for the Service's ports.
        """
        vip = f"{SUBNET}.{210 + SLOT * 4 + len(self._vips)}"
        subprocess.run(["ip", "addr", "del", f"{vip}/32", "dev", BRIDGE], capture_output=True)
        subprocess.run(["ip", "addr", "add", f"{vip}/32", "dev", BRIDGE], check=True)
        self._vips[app] = vip
        for port in SERVICE_PORTS:
            proxy = _Proxy((vip, port), lambda app=app: self.endpoints(app), port)
            threading.Thread(target=proxy.serve_forever, daemon=True).start()
            self._proxies.append(proxy)
        self._hosts({self.service_host(a): ip for a, ip in self._vips.items()})

    def close(self) -> None:
        self.api.shutdown()
        self.api.server_close()
        for proxy in self._proxies:
            proxy.shutdown()
            proxy.server_close()
        for vip in self._vips.values():
            subprocess.run(["ip", "addr", "del", f"{vip}/32", "dev", BRIDGE], capture_output=True)


class _PebbleConnection(http.client.HTTPConnection):
    """HTTP to Pebble over its unix socket, as the kubelet's probe reaches its port."""

    def __init__(self, path: str):
        super().__init__("localhost", timeout=1)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], endpoints: Callable[[], list[Pod]], port: int):
        self.endpoints = endpoints
        self.port = port
        super().__init__(address, _Forward)


class _Forward(socketserver.BaseRequestHandler):
    server: _Proxy

    def handle(self) -> None:
        ready = self.server.endpoints()
        if not ready:
            return  # no endpoint: the connection ends at once
        pod = random.choice(ready)
        try:
            upstream = socket.create_connection((pod.ip, self.server.port), timeout=5)
        except OSError:
            return
        upstream.settimeout(None)
        client = self.request

        def pump(source: socket.socket, target: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    target.sendall(data)
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

        other = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        other.start()
        pump(client, upstream)
        other.join()
        upstream.close()


class _ApiServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, kube: Kubernetes):
        self.kube = kube
        super().__init__((HOST_IP, 0), _ApiHandler)


_PATHS = {
    re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/statefulsets/([^/?]+)"): "statefulsets",
    re.compile(r"^/api/v1/namespaces/([^/]+)/services/([^/?]+)"): "services",
}


class _ApiHandler(http.server.BaseHTTPRequestHandler):
    """The two objects the charm reads and patches, as the API server answers them."""

    server: _ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _status(self, code: int, reason: str, message: str) -> None:
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": code,
            }
        ).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _object(self) -> tuple[dict[str, Any], str, str] | None:
        kube = self.server.kube
        caller = self.headers.get("Authorization", "").removeprefix("Bearer ")
        for pattern, kind in _PATHS.items():
            if match := pattern.match(self.path):
                namespace, name = match.groups()
                # Juju grants the application's service account access to the cluster's
                # API only with `juju trust` (worker/caasapplicationprovisioner, ensureTrust).
                if caller not in kube.trusted:
                    self._status(403, "Forbidden", f"{kind} {name!r} is forbidden for {caller}")
                    return None
                objects = getattr(kube, kind)
                if namespace != kube.model or name not in objects:
                    self._status(404, "NotFound", f"{kind} {name!r} not found")
                    return None
                return objects, kind, name
        self._status(404, "NotFound", self.path)
        return None

    def _send(self, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if found := self._object():
            objects, _, name = found
            with self.server.kube._lock:
                self._send(objects[name])

    def do_PATCH(self) -> None:
        found = self._object()
        if not found:
            return
        objects, kind, name = found
        patch = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if self.headers.get("Content-Type") != "application/strategic-merge-patch+json":
            self._status(415, "UnsupportedMediaType", self.headers.get("Content-Type", ""))
            return
        kube = self.server.kube
        with kube._lock:
            kube.patches.append((kind, name, patch))
            strategic_merge(objects[name], patch)
            self._send(objects[name])


def _kill_what_is_left(pod: Pod) -> bool:
    """The container runtime's SIGKILL to every process of the pod; True if any was left."""
    pids = subprocess.run(["ip", "netns", "pids", pod.netns], capture_output=True, text=True)
    killed = False
    for pid in pids.stdout.split():
        with contextlib.suppress(OSError):
            os.kill(int(pid), 9)
            killed = True
    return killed


class _Hook(threading.Thread):
    """The hook Juju runs in the charm container while its pod goes (maybe none)."""

    def __init__(self, run: Callable[[], None] | None):
        super().__init__(daemon=True)
        self.work = run
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            if self.work:
                self.work()
        except BaseException as error:  # raised again in the test thread
            self.failure = error

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure
