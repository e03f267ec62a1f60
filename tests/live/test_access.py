"""Access on one `all` node: HTTPS from the certificates relation, passwords, the charm's users.

The test plays the TLS provider (self-signed-certificates): it signs the CSR the charm
writes with a CA of its own. The node is deployed the way an operator secures it (a
catalog, users and the certificates relation from the start), so Trino starts once,
already on HTTPS with passwords; later user and rule changes must need no restart.
"""

from __future__ import annotations

import json
import socket
import ssl

import pytest
import requests
import trino.auth
import trino.dbapi
import trino.exceptions
from conftest import Pods, wait_for
from cryptography import x509
from juju import Juju, RelationRecord, Unit
from lab import LabCA, once_listed, query_https, trino_pid, trino_service_active, users_yaml
from netlab import Pod
from ops import testing
from test_single_node import become_active, boot

from access import CHARM_USER_LABEL, WAITING_FOR_CERTIFICATE
from core.observability import METRICS_USER
from core.plan import CHARM_USER
from workload import Credentials
from workload import drain as drain_node

APP, PROVIDER = "trino", "self-signed-certificates"
USERS = {"alice": "al1ce-pa55"}
NATION = "SELECT count(*) FROM tpch.tiny.nation"
DENIED_TPCH = {
    "catalogs": [{"user": "alice", "catalog": "tpch", "allow": "none"}, {"allow": "all"}]
}


class Secured:
    """The secured node and what a client needs to reach it."""

    def __init__(self, unit: Unit, pod: Pod, fqdn: str, ca: LabCA, relation: RelationRecord):
        self.unit = unit
        self.pod = pod
        self.fqdn = fqdn
        self.ca = ca
        self.relation = relation
        self.users_secret = ""

    @property
    def https(self) -> str:
        return f"https://{self.fqdn}:8443"

    @property
    def http(self) -> str:
        return f"http://{self.pod.ip}:8080"

    def query(self, user: str, password: str, sql: str = NATION) -> list[list]:
        """A query over HTTPS with a password, the certificate checked against the test CA."""
        auth = trino.auth.BasicAuthentication(user, password)
        return query_https(self.fqdn, self.ca.path, auth, sql, user)

    def statement(self, base: str, **kwargs) -> requests.Response:
        """POST a query to /v1/statement: Trino's answer code tells who it let in."""
        return requests.post(
            f"{base}/v1/statement", data="SELECT 1", verify=str(self.ca.path), timeout=30, **kwargs
        )


@pytest.fixture(scope="module")
def secured(juju: Juju, pods: Pods, pod_names, tmp_path_factory) -> Secured:
    pod = pods(APP, 0)
    users = juju.add_secret("operator", {"users": users_yaml(USERS)}, grant_to=APP)
    app = juju.deploy(
        APP,
        [pod],
        {
            "catalog-config": "tpch:\n  connector: tpch\n",
            "user-secret-id": users,
            "graceful-shutdown-period": "5s",
        },
    )
    juju.remote_app(PROVIDER)
    relation = juju.integrate(APP, "certificates", PROVIDER, "certificates", "tls-certificates")
    unit = app.units[0]
    ca = LabCA(tmp_path_factory.mktemp("tls"))
    node = Secured(unit, pod, pods.fqdn(pod), ca, relation)
    node.users_secret = users
    juju.run(unit, lambda ctx, rel: ctx.on.relation_created(rel), relation=relation)
    boot(juju, unit)
    return node


def test_passwords_wait_for_the_certificate(secured: Secured, juju: Juju):
    """Users are set but no certificate yet: the charm waits and starts nothing."""
    state = juju.run(secured.unit, lambda ctx, _: ctx.on.update_status())
    assert state.unit_status == testing.WaitingStatus(WAITING_FOR_CERTIFICATE)
    assert not (secured.pod.etc / "config.properties").exists()
    requests_ = json.loads(
        secured.relation.unit_data[secured.unit.name]["certificate_signing_requests"]
    )
    assert len(requests_) == 1
    csr = x509.load_pem_x509_csr(requests_[0]["certificate_signing_request"].encode())
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert secured.fqdn in names.get_values_for_type(x509.DNSName)


def test_certificate_gives_https_on_8443(secured: Secured, juju: Juju):
    csrs = secured.relation.unit_data[secured.unit.name]["certificate_signing_requests"]
    secured.relation.app_data[PROVIDER]["certificates"] = secured.ca.answer(csrs)
    juju.settle()
    state = become_active(juju, secured.unit)
    assert state.unit_status == testing.ActiveStatus()
    assert oct((secured.pod.etc / "keystore.pem").stat().st_mode & 0o777) == "0o600"

    info = requests.get(f"{secured.https}/v1/info", verify=str(secured.ca.path), timeout=30)
    assert info.json()["starting"] is False
    context = ssl.create_default_context(cafile=str(secured.ca.path))
    with socket.create_connection((secured.pod.ip, 8443), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname=secured.fqdn) as tls:
            served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    assert served.issuer == secured.ca.cert.subject


def test_right_password_over_https_queries(secured: Secured):
    assert once_listed(lambda: secured.query("alice", USERS["alice"])) == [[25]]


def test_wrong_password_is_refused(secured: Secured):
    answer = secured.statement(secured.https, auth=("alice", "not-her-password"))
    assert answer.status_code == 401, answer.text
    with pytest.raises(trino.exceptions.HttpError, match="401"):
        secured.query("alice", "not-her-password")


def test_plain_http_refuses_passwords_and_bare_names(secured: Secured):
    with_password = secured.statement(secured.http, auth=("alice", USERS["alice"]))
    assert with_password.status_code == 403, with_password.text
    assert "Authentication over HTTP is not enabled" in with_password.text
    bare_name = secured.statement(secured.http, headers={"X-Trino-User": "alice"})
    assert bare_name.status_code == 403, bare_name.text


def test_metrics_user_reads_metrics_over_http_but_cannot_query(secured: Secured):
    # Prometheus scrapes with the metrics user's name and no password (the scrape job).
    metrics = requests.get(f"{secured.http}/metrics", auth=(METRICS_USER, ""), timeout=30)
    assert metrics.status_code == 200, metrics.text
    assert "trino_execution_name_QueryManager_RunningQueries" in metrics.text
    over_http = secured.statement(secured.http, auth=(METRICS_USER, ""))
    assert over_http.status_code == 403, over_http.text
    over_https = secured.statement(secured.https, auth=(METRICS_USER, ""))
    assert over_https.status_code == 401, over_https.text
    # Read-only: it cannot shut a node down from plain HTTP either.
    drain = requests.put(
        f"{secured.http}/v1/info/state",
        json="SHUTTING_DOWN",
        auth=(METRICS_USER, ""),
        timeout=30,
    )
    assert drain.status_code == 403, drain.text


def _charm_password(juju: Juju) -> str:
    secret = next(s for s in juju.secrets.values() if s.label == CHARM_USER_LABEL)
    return secret.content["password"]


def test_charm_user_may_drain_but_reads_no_table(secured: Secured, juju: Juju):
    """The drain the charm sends a worker, sent to this node: authorized, then refused.

    Trino refuses to shut a coordinator down *after* access control let the request
    through (HTTP 500 "Cannot shutdown coordinator"); a user without the right gets 403.
    """
    password = _charm_password(juju)
    drain = requests.put(
        f"{secured.https}/v1/info/state",
        json="SHUTTING_DOWN",
        auth=(CHARM_USER, password),
        verify=str(secured.ca.path),
        timeout=30,
    )
    # Past authentication and access control, into the resource: Trino's own refusal.
    assert drain.status_code == 500, drain.text
    assert "Cannot shutdown coordinator" in drain.text
    other = requests.put(
        f"{secured.https}/v1/info/state",
        json="SHUTTING_DOWN",
        auth=("alice", USERS["alice"]),
        verify=str(secured.ca.path),
        timeout=30,
    )
    assert other.status_code == 403, other.text
    assert "Management only resource" in other.text
    # The charm's own drain client, with what the charm hands it (its CA, its password).
    credentials = Credentials(password, secured.https, ca=secured.ca.pem)
    assert drain_node(CHARM_USER, credentials=credentials) == "Trino refused to drain (HTTP 500)"
    with pytest.raises(trino.exceptions.DatabaseError, match="Access Denied"):
        secured.query(CHARM_USER, password)
    assert secured.query("alice", USERS["alice"]) == [[25]], "the node still serves"


def test_new_user_logs_in_without_restart(secured: Secured, juju: Juju):
    pid = trino_pid(secured.pod)
    assert secured.statement(secured.https, auth=("bob", "b0b-pa55")).status_code == 401
    juju.set_secret(secured.users_secret, {"users": users_yaml({**USERS, "bob": "b0b-pa55"})})
    juju.settle()

    def bob_in():
        try:
            return secured.query("bob", "b0b-pa55")
        except trino.exceptions.HttpError:
            return None

    assert wait_for("bob logs in", bob_in, timeout=60, poll=1) == [[25]]
    assert trino_pid(secured.pod) == pid, "Trino was restarted"
    assert trino_service_active(secured.pod)


def test_rules_change_applies_without_restart(secured: Secured, juju: Juju):
    pid = trino_pid(secured.pod)
    juju.config(APP, **{"access-control-rules": json.dumps(DENIED_TPCH)})

    def alice_denied():
        try:
            secured.query("alice", USERS["alice"])
        except trino.exceptions.DatabaseError as error:
            return "Access Denied" in str(error)
        return False

    wait_for("the rule denying alice tpch", alice_denied, timeout=60, poll=1)
    assert secured.query("bob", "b0b-pa55") == [[25]], "other users keep their access"
    assert trino_pid(secured.pod) == pid, "Trino was restarted"
    assert trino_service_active(secured.pod)
    state = become_active(juju, secured.unit)
    assert state.unit_status == testing.ActiveStatus()
