"""A worker drains when its pod goes away: the script Pebble runs it through.

Kubernetes deletes a pod by sending SIGTERM to each container's first process;
in the ``trino`` container that is Pebble, which stops its services as
``pebble stop`` does: SIGTERM to the service's process group, then SIGKILL once
the service's ``kill-delay`` has passed. Trino has no drain on a signal (its
shutdown hook fails the running tasks), so a worker's Trino runs under
``templates/run-worker.sh.j2``, in a process group of its own that Pebble's
signals do not reach. The script answers SIGTERM by asking Trino to drain
(``PUT /v1/info/state`` as the charm's user; the request and its credentials are
a curl config of mode 0600, never on a command line), then exits when Trino has
finished its tasks and exited.

Trino cannot simply inherit an ignored SIGTERM: airlift's launcher is a Go
program, and Go installs its own SIGTERM handler over an inherited "ignore",
which its exec of the JVM then resets to the default (seen on the live tier:
Trino stopped 5 s after SIGTERM and the query failed).

When the charm itself stops or restarts a worker (it drains through the roll
first when it can), it leaves ``STOP_NOW`` for the script, which then stops
Trino at once, as before. A coordinator refuses the drain: it runs the launcher
directly and stops on SIGTERM within Pebble's default kill-delay.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from core.render import render
from core.rolling import termination_grace_seconds

ETC = "/etc/trino"
WORKER_SCRIPT = f"{ETC}/run-worker.sh"
WORKER_COMMAND = f"/bin/bash {WORKER_SCRIPT}"
# The drain request with the charm user's credentials (0600), and the CA that
# verifies Trino's certificate when it serves HTTPS: read only on SIGTERM.
DRAIN_CONFIG = f"{ETC}/drain.curl"
DRAIN_CA = f"{ETC}/drain-ca.pem"
# Left by the charm just before it stops or restarts a worker: stop at once.
# /tmp starts empty with each container.
STOP_NOW = "/tmp/trino-k8s-charm-stop-now"  # noqa: S108
# Pebble's SIGKILL comes this long before the kubelet's, so Pebble itself exits
# after Trino and before its container is killed.
PEBBLE_MARGIN = 5
# The script kills a drain that lasts too long this long before Pebble's SIGKILL.
SCRIPT_MARGIN = 2


def kill_delay_seconds(grace_seconds: float) -> int:
    """How long Pebble lets a worker drain after SIGTERM: twice the grace period and more.

    Trino waits the grace period, waits for its tasks, waits the period again:
    what is left of the pod's terminationGracePeriodSeconds is for the tasks.
    """
    return termination_grace_seconds(grace_seconds) - PEBBLE_MARGIN


def go_duration(seconds: int) -> str:
    """A duration as Pebble (Go's time.Duration) writes it back: ``4m25s``, ``1h0m0s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def worker_script(launcher: str, grace_seconds: float) -> str:
    """The script Pebble runs a worker's Trino through.

    Pebble's SIGKILL would not reach Trino in its own process group: the script
    kills it itself just before, should a drain last that long.
    """
    return render(
        "run-worker.sh",
        launcher=launcher,
        drain_config=DRAIN_CONFIG,
        stop_now=STOP_NOW,
        drain_seconds=kill_delay_seconds(grace_seconds) - SCRIPT_MARGIN,
    )


def _quoted(value: str) -> str:
    """A value for a curl config file: double quotes, with curl's escapes."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(char, char) for char in value) + '"'


def drain_request(
    user: str, base_url: str, password: str = "", ca: str = "", forwarded_https: bool = False
) -> dict[str, str]:
    """The files of the drain request: the curl config (0600 content), and the CA if any.

    The same request as the charm's own drain (`workload.drain`). With HTTPS, the
    name on Trino's certificate is resolved to 127.0.0.1: a pod being deleted
    may already be gone from the cluster's DNS.
    """
    url = urlsplit(base_url)
    headers = ["Content-Type: application/json", f"X-Trino-User: {user}"]
    if forwarded_https:
        headers.append("X-Forwarded-Proto: https")
    options = {
        "url": f"{base_url}/v1/info/state",
        "request": "PUT",
        "data": '"SHUTTING_DOWN"',
        "max-time": "10",
    }
    lines = [f"{name} = {_quoted(value)}" for name, value in options.items()]
    lines += [f"header = {_quoted(header)}" for header in headers]
    if password:
        lines.append(f"user = {_quoted(f'{user}:{password}')}")
    if url.scheme == "https":
        lines.append(f"resolve = {_quoted(f'{url.hostname}:{url.port or 443}:127.0.0.1')}")
    if ca:
        lines.append(f"cacert = {_quoted(DRAIN_CA)}")
    config = render("drain.curl", options=lines)
    return {DRAIN_CONFIG: config, **({DRAIN_CA: ca} if ca else {})}
