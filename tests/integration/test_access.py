"""Securing a deployment end to end, as the README does it: TLS, users, ingress.

The tests build on each other in one model: HTTPS from self-signed-certificates,
password authentication (no header-only access left), a user rotation that needs
no restart, then traefik-k8s in front. They skip when no controller is reachable.
"""

from __future__ import annotations

import json
import pathlib
import shlex
import time

import jubilant
import pytest

APP, TLS, INGRESS = "trino", "self-signed-certificates", "traefik-k8s"
TRINO_IMAGE = "trinodb/trino:483"
DEPLOY_TIMEOUT = 20 * 60
SETTLE_TIMEOUT = 15 * 60
USERS = {"alice": "al1ce-pa55", "bob": "b0b-pa55"}


def settled(status: jubilant.Status) -> bool:
    return jubilant.all_active(status, APP) and jubilant.all_agents_idle(status, APP)


def errored(status: jubilant.Status) -> bool:
    return jubilant.any_error(status, APP)


def fqdn(juju: jubilant.Juju) -> str:
    return f"{APP}-0.{APP}-endpoints.{juju.model}.svc.cluster.local"


def trino_cli(juju: jubilant.Juju, server: str, user: str, password: str | None, sql: str) -> str:
    """Run the Trino CLI in the unit's container; raises CLIError when the query fails."""
    args = ["trino", f"--server={server}", f"--user={user}", "--output-format=JSON"]
    env = ""
    if password is not None:
        # The CLI checks the certificate against the CA the charm's keystore was signed by.
        args += ["--password", "--truststore-path=/tmp/ca.pem"]
        env = f"TRINO_PASSWORD={shlex.quote(password)} "
    command = env + shlex.join([*args, f"--execute={sql}"])
    return juju.ssh(f"{APP}/0", f"sh -c {shlex.quote(command)}", container="trino")


def restarts(juju: jubilant.Juju) -> int:
    """How many times Pebble (re)started or restarted the trino service so far."""
    changes = juju.ssh(
        f"{APP}/0",
        "env PEBBLE_SOCKET=/charm/container/pebble.socket /charm/bin/pebble changes",
        container="trino",
    )
    return sum(1 for line in changes.splitlines() if "service" in line.lower())


def users_yaml(users: dict[str, str]) -> str:
    return "".join(f"{user}: {password}\n" for user, password in users.items())


def test_tls_turns_on_https(juju: jubilant.Juju, charm_path: pathlib.Path) -> None:
    juju.deploy(charm_path, APP, resources={"trino-image": TRINO_IMAGE}, trust=True)
    juju.deploy(TLS, channel="1/stable")
    juju.integrate(f"{APP}:certificates", TLS)
    juju.wait(settled, error=errored, timeout=DEPLOY_TIMEOUT)

    ca = juju.run(f"{TLS}/0", "get-ca-certificate").results["ca-certificate"]
    juju.ssh(
        f"{APP}/0",
        f"sh -c {shlex.quote(f'printf %s {shlex.quote(ca)} > /tmp/ca.pem')}",
        container="trino",
    )
    info = juju.ssh(
        f"{APP}/0",
        f"curl -s --cacert /tmp/ca.pem https://{fqdn(juju)}:8443/v1/info",
        container="trino",
    )
    assert json.loads(info)["starting"] is False


def test_users_turn_on_passwords_and_close_the_header_door(juju: jubilant.Juju) -> None:
    secret = juju.cli("add-secret", "trino-users", f"users={users_yaml(USERS)}").strip()
    juju.cli("grant-secret", "trino-users", APP)
    juju.config(APP, {"user-secret-id": secret})
    juju.wait(settled, error=errored, timeout=SETTLE_TIMEOUT)

    https = f"https://{fqdn(juju)}:8443"
    assert json.loads(trino_cli(juju, https, "alice", USERS["alice"], "SELECT 1")) == {"_col0": 1}
    with pytest.raises(jubilant.CLIError):
        trino_cli(juju, https, "alice", "wrong", "SELECT 1")
    with pytest.raises(jubilant.CLIError):  # a header alone over HTTP is no longer enough
        trino_cli(juju, "http://localhost:8080", "alice", None, "SELECT 1")


def test_rotating_users_needs_no_restart(juju: jubilant.Juju) -> None:
    before = restarts(juju)
    rotated = {**USERS, "carol": "c4rol-pa55"}
    juju.cli("update-secret", "trino-users", f"users={users_yaml(rotated)}")
    juju.wait(settled, error=errored, timeout=SETTLE_TIMEOUT)
    time.sleep(10)  # Trino rereads password.db every 5s

    https = f"https://{fqdn(juju)}:8443"
    assert trino_cli(juju, https, "carol", rotated["carol"], "SELECT 1")
    assert restarts(juju) == before  # Trino reread password.db by itself


def test_ingress_gets_https_and_the_url(juju: jubilant.Juju) -> None:
    juju.deploy(INGRESS, channel="latest/stable", trust=True)
    juju.integrate(f"{APP}:ingress", INGRESS)
    juju.wait(settled, error=errored, timeout=SETTLE_TIMEOUT)

    endpoints = juju.run(f"{INGRESS}/0", "show-proxied-endpoints").results
    urls = json.loads(endpoints["proxied-endpoints"])
    assert APP in urls, urls
