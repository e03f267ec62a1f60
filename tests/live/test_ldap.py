"""LDAP logins and LDAP groups on one `all` node, against a real OpenLDAP (slapd).

The test runs a private slapd on the pods' side of the bridge (LDAPS, a certificate
from the test CA, its own config and database in a temporary folder), seeded with two
users and one group. The node is deployed as an operator secures it: HTTPS from the
certificates relation, the LDAP options, a bind account in a secret, and a rule that
lets only the `analysts` group read the tpch catalog. Trino starts once, on all of it.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator

import netlab
import ops
import pytest
import requests
import trino.auth
import trino.dbapi
import trino.exceptions
from charmlibs.interfaces.ldap import LdapProviderData, LdapRequirerData
from components import ComponentError
from conftest import Pods, wait_for
from juju import Juju, Unit
from lab import LabCA, once_listed, query_https, trino_pid
from netlab import Pod
from ops import testing
from test_single_node import become_active, boot
from tests.unit import pg

from access import CHARM_USER_LABEL
from core.plan import CHARM_USER

APP, PROVIDER, GLAUTH = "trino", "self-signed-certificates", "glauth-k8s"
SUFFIX = "dc=trino,dc=test"
ADMIN_DN, ADMIN_PASSWORD = f"cn=admin,{SUFFIX}", "adm1n-pa55"
USERS = {"alice": "al1ce-ldap", "bob": "b0b-ldap"}  # alice is an analyst, bob is not
NATION = "SELECT count(*) FROM tpch.tiny.nation"
ANALYSTS_ONLY = {"catalogs": [{"group": "analysts", "catalog": "tpch", "allow": "all"}]}

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {folder}/slapd.pid
TLSCACertificateFile {folder}/ca.pem
TLSCertificateFile {folder}/server.pem
TLSCertificateKeyFile {folder}/server.key
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {folder}/db
overlay memberof
"""


def seed() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: trino\ndc: trino",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups",
        *(
            f"dn: uid={user},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {user}\n"
            f"cn: {user}\nsn: {user}\nuserPassword: {password}"
            for user, password in USERS.items()
        ),
    ]
    return "\n\n".join(entries) + "\n"


# Added online, once slapd serves: slapadd skips the memberof overlay, ldapadd does not.
GROUP = (
    f"dn: cn=analysts,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: analysts\n"
    f"member: uid=alice,ou=people,{SUFFIX}\n"
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> LabCA:
    return LabCA(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def slapd(ca: LabCA, tmp_path_factory) -> Iterator[str]:
    """A private OpenLDAP on ldaps://<HOST_IP>:<port>; its URL."""
    if not (shutil.which("/usr/sbin/slapd") and shutil.which("ldapadd")):
        raise ComponentError(
            "slapd or ldapadd not found: apt-get install slapd ldap-utils (.ci/run does)"
        )
    folder = tmp_path_factory.mktemp("slapd")
    (folder / "db").mkdir()
    certificate, key = ca.issue([netlab.HOST_IP])
    (folder / "ca.pem").write_text(ca.pem)
    (folder / "server.pem").write_text(certificate)
    (folder / "server.key").write_text(key)
    (folder / "slapd.conf").write_text(
        SLAPD_CONF.format(folder=folder, suffix=SUFFIX, admin=ADMIN_DN, password=ADMIN_PASSWORD)
    )
    (folder / "seed.ldif").write_text(seed())
    conf = str(folder / "slapd.conf")
    subprocess.run(
        ["/usr/sbin/slapadd", "-f", conf, "-l", str(folder / "seed.ldif")],
        check=True,
        capture_output=True,
    )
    port = pg.free_port(netlab.HOST_IP)
    url = f"ldaps://{netlab.HOST_IP}:{port}"
    subprocess.run(["/usr/sbin/slapd", "-f", conf, "-h", f"{url}/"], check=True)
    context = ssl.create_default_context(cafile=str(folder / "ca.pem"))

    def serving():
        try:
            with socket.create_connection((netlab.HOST_IP, port), timeout=2) as raw:
                with context.wrap_socket(raw, server_hostname=netlab.HOST_IP):
                    return True
        except OSError:
            return False

    try:
        wait_for("slapd to serve LDAPS", serving, timeout=30, poll=0.5)
        ldif = folder / "group.ldif"
        ldif.write_text(GROUP)
        subprocess.run(
            ["ldapadd", "-H", url, "-x", "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-f", str(ldif)],
            check=True,
            capture_output=True,
            env={"LDAPTLS_CACERT": str(folder / "ca.pem"), "PATH": "/usr/bin:/bin"},
        )
        yield url
    finally:
        pid = int((folder / "slapd.pid").read_text().split()[0])
        subprocess.run(["kill", "-TERM", str(pid)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            subprocess.run(["kill", f"-{signal.SIGKILL.value}", str(pid)])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


class Node:
    def __init__(self, unit: Unit, pod: Pod, fqdn: str, ca: LabCA):
        self.unit, self.pod, self.fqdn, self.ca = unit, pod, fqdn, ca

    def query(self, user: str, password: str, sql: str = NATION) -> list[list]:
        auth = trino.auth.BasicAuthentication(user, password)
        return query_https(self.fqdn, self.ca.path, auth, sql, user)


@pytest.fixture(scope="module")
def node(juju: Juju, pods: Pods, pod_names, slapd: str, ca: LabCA) -> Node:
    """The node on HTTPS with LDAP, once it is active."""
    pod = pods(APP, 0)
    bind = juju.add_secret(
        "operator", {"bind-dn": ADMIN_DN, "bind-password": ADMIN_PASSWORD}, grant_to=APP
    )
    app = juju.deploy(
        APP,
        [pod],
        {
            "catalog-config": "tpch:\n  connector: tpch\n",
            "graceful-shutdown-period": "5s",
            "ldap-url": slapd,
            "ldap-user-base-dn": f"ou=people,{SUFFIX}",
            "ldap-bind-secret-id": bind,
            "ldap-group-base-dn": f"ou=groups,{SUFFIX}",
            "ldap-ca-cert": ca.pem,
            "access-control-rules": json.dumps(ANALYSTS_ONLY),
        },
    )
    juju.remote_app(PROVIDER)
    relation = juju.integrate(APP, "certificates", PROVIDER, "certificates", "tls-certificates")
    unit = app.units[0]
    juju.run(unit, lambda ctx, rel: ctx.on.relation_created(rel), relation=relation)
    boot(juju, unit)
    csrs = relation.unit_data[unit.name]["certificate_signing_requests"]
    relation.app_data[PROVIDER]["certificates"] = ca.answer(csrs)
    juju.settle()
    state = become_active(juju, unit)
    assert state.unit_status == testing.ActiveStatus()
    return Node(unit, pod, pods.fqdn(pod), ca)


def test_an_ldap_user_logs_in_over_https(node: Node):
    assert once_listed(lambda: node.query("alice", USERS["alice"])) == [[25]]


def test_a_wrong_ldap_password_is_refused(node: Node):
    with pytest.raises(trino.exceptions.HttpError, match="401"):
        node.query("alice", "not-her-password")
    with pytest.raises(trino.exceptions.HttpError, match="401"):
        node.query("mallory", "anything")


def test_users_get_their_ldap_groups(node: Node):
    groups = "SELECT current_groups()"
    assert node.query("alice", USERS["alice"], groups) == [[["analysts"]]]
    assert node.query("bob", USERS["bob"], groups) == [[[]]]


def test_a_group_rule_allows_its_member_and_denies_others(node: Node):
    assert node.query("alice", USERS["alice"]) == [[25]]
    with pytest.raises(trino.exceptions.DatabaseError, match="Access Denied"):
        node.query("bob", USERS["bob"])  # a valid LDAP login, not an analyst


def test_the_bind_password_is_only_in_0600_files(node: Node):
    etc = node.pod.etc
    secret = ADMIN_PASSWORD.encode()
    holders = [
        path.name for path in etc.rglob("*") if path.is_file() and secret in path.read_bytes()
    ]
    assert sorted(holders) == [
        "group-provider.properties",
        "password-authenticator-ldap.properties",
    ]
    for name in holders:
        assert (etc / name).stat().st_mode & 0o777 == 0o600
    plan = ops.pebble.Client(socket_path=node.pod.socket).get_plan().to_yaml()
    assert ADMIN_PASSWORD not in plan


def test_the_charm_user_still_logs_in_from_the_password_file(node: Node, juju: Juju):
    """The file authenticator comes first: the charm's own user never depends on LDAP."""
    secret = next(s for s in juju.secrets.values() if s.label == CHARM_USER_LABEL)
    drain = requests.put(
        f"https://{node.fqdn}:8443/v1/info/state",
        json="SHUTTING_DOWN",
        auth=(CHARM_USER, secret.content["password"]),
        verify=str(node.ca.path),
        timeout=30,
    )
    # Past authentication and access control: Trino itself refuses to stop a coordinator.
    assert drain.status_code == 500, drain.text
    assert "Cannot shutdown coordinator" in drain.text


def test_the_ldap_relation_serves_as_glauth_k8s_would(node: Node, juju: Juju, slapd: str):
    """The same server through the `ldap` relation: users by `cn`, groups by `memberOf`."""
    juju.remote_app(GLAUTH)
    bind = juju.add_secret(GLAUTH, {"password": ADMIN_PASSWORD}, grant_to=APP)
    relation = juju.integrate(APP, "ldap", GLAUTH, "ldap", "ldap")
    model = node.unit.state.model.name  # type: ignore[union-attr]
    assert LdapRequirerData(**relation.app_data[APP]) == LdapRequirerData(user=APP, group=model)
    offer = LdapProviderData(
        urls=[slapd.replace("ldaps://", "ldap://")],
        ldaps_urls=[slapd],
        base_dn=SUFFIX,
        starttls=False,
        bind_dn=ADMIN_DN,
        bind_password="",
        bind_password_secret=bind,
        auth_method="simple",
    )
    relation.app_data[GLAUTH].update({k: str(v) for k, v in offer.model_dump().items()})
    juju.settle()
    state = juju.run(node.unit, lambda ctx, _: ctx.on.update_status())
    assert state.unit_status.name == "blocked"
    assert state.unit_status.message.startswith("ldap-url and the ldap relation both name")

    options = ("ldap-url", "ldap-user-base-dn", "ldap-bind-secret-id", "ldap-group-base-dn")
    pid = trino_pid(node.pod)
    juju.config(APP, **dict.fromkeys(options, ""))
    become_active(juju, node.unit)
    assert trino_pid(node.pod) != pid, "Trino reads LDAP files only as it starts"
    provider = (node.pod.etc / "group-provider.properties").read_text()
    assert "ldap.user-member-of-attribute=memberOf" in provider.splitlines()

    groups = "SELECT current_groups()"
    assert once_listed(lambda: node.query("alice", USERS["alice"], groups)) == [[["analysts"]]]
    # Trino lists the node for a query without a catalog before it does for tpch (seen live).
    assert once_listed(lambda: node.query("alice", USERS["alice"])) == [[25]]
    with pytest.raises(trino.exceptions.DatabaseError, match="Access Denied"):
        node.query("bob", USERS["bob"])
    with pytest.raises(trino.exceptions.HttpError, match="401"):
        node.query("alice", "not-her-password")
