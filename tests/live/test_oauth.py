"""Single sign-on on one `all` node: the oauth relation, OAuth2 for browsers, JWT bearer tokens.

The test plays two providers. As self-signed-certificates it signs the charm's CSR (HTTPS
is required for single sign-on). As the OIDC provider (Hydra) it writes the provider
databag the real library writes (issuer, endpoints, JWKS endpoint, client id, the client
secret in a Juju secret, its CA) and serves, over HTTPS with a certificate of the test CA,
the OIDC discovery document and a JWKS of a test key. Tokens are made here: JWTs signed
by the test key (RS256), and one signed by another key.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urljoin, urlsplit

import ops
import pytest
import requests
import trino.auth
import trino.dbapi
from charmlibs.interfaces.oauth._oauth import OAUTH_REQUIRER_JSON_SCHEMA, _load_data
from conftest import Pods, wait_for
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from juju import Juju, RelationRecord, Unit
from lab import LabCA, once_listed, query_https, trino_pid
from netlab import HOST_IP, Pod
from ops import testing
from test_single_node import become_active, boot

APP, TLS, IDP = "trino", "self-signed-certificates", "hydra"
CLIENT_ID = "5b1c3c5e-trino-client"
SUBJECT = "svc-reporting"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(number: int) -> str:
    return _b64(number.to_bytes((number.bit_length() + 7) // 8, "big"))


class Idp:
    """The OIDC provider: a signing key, its JWKS and discovery document over HTTPS."""

    def __init__(self, ca: LabCA):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.requests: list[str] = []
        cert, key = ca.issue([HOST_IP])
        folder = ca.path.parent
        (folder / "idp.pem").write_text(cert)
        (folder / "idp.key").write_text(key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(folder / "idp.pem", folder / "idp.key")
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                idp.requests.append(self.path)
                body = idp.documents().get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                payload = json.dumps(body or {"error": "not found"}).encode()
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer((HOST_IP, 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.issuer = f"https://{HOST_IP}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return urljoin(self.issuer, path)

    def documents(self) -> dict[str, dict]:
        public = self.key.public_key().public_numbers()
        return {
            "/.well-known/openid-configuration": {
                "issuer": self.issuer,
                "authorization_endpoint": self.url("/oauth2/auth"),
                "token_endpoint": self.url("/oauth2/token"),
                "userinfo_endpoint": self.url("/userinfo"),
                "jwks_uri": self.url("/.well-known/jwks.json"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            },
            "/.well-known/jwks.json": {
                "keys": [
                    {
                        "kty": "RSA",
                        "kid": self.kid,
                        "use": "sig",
                        "alg": "RS256",
                        "n": _uint(public.n),
                        "e": _uint(public.e),
                    }
                ]
            },
        }

    def token(self, key: rsa.RSAPrivateKey | None = None, **claims) -> str:
        """A JWT as the provider signs access tokens (RS256, its key id)."""
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        body = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": SUBJECT,
            "iat": now,
            "exp": now + 600,
            **claims,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
        signature = (key or self.key).sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64(signature)}"

    def provider_databag(self, secret_id: str, ca: LabCA) -> dict[str, str]:
        """What charmlibs' OAuthProvider writes once the client exists."""
        return {
            "issuer_url": self.issuer,
            "authorization_endpoint": self.url("/oauth2/auth"),
            "token_endpoint": self.url("/oauth2/token"),
            "introspection_endpoint": self.url("/admin/oauth2/introspect"),
            "userinfo_endpoint": self.url("/userinfo"),
            "jwks_endpoint": self.url("/.well-known/jwks.json"),
            "scope": "openid profile email phone",
            "groups": "",
            "ca_chain": json.dumps([ca.pem]),
            "jwt_access_token": "True",
            "client_id": CLIENT_ID,
            "client_secret_id": secret_id,
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Node:
    def __init__(self, unit: Unit, pod: Pod, fqdn: str, ca: LabCA, idp: Idp):
        self.unit, self.pod, self.fqdn, self.ca, self.idp = unit, pod, fqdn, ca, idp
        self.oauth: RelationRecord | None = None
        self.certificates: RelationRecord | None = None
        self.client_secret = ""

    @property
    def https(self) -> str:
        return f"https://{self.fqdn}:8443"

    def query(self, token: str, sql: str) -> list[list]:
        return query_https(self.fqdn, self.ca.path, trino.auth.JWTAuthentication(token), sql)


@pytest.fixture(scope="module")
def node(juju: Juju, pods: Pods, pod_names, tmp_path_factory) -> Iterator[Node]:
    ca = LabCA(tmp_path_factory.mktemp("oauth"))
    idp = Idp(ca)
    pod = pods(APP, 0)
    app = juju.deploy(
        APP,
        [pod],
        {"catalog-config": "tpch:\n  connector: tpch\n", "graceful-shutdown-period": "5s"},
    )
    juju.remote_app(TLS)
    juju.remote_app(IDP)
    unit = app.units[0]
    found = Node(unit, pod, pods.fqdn(pod), ca, idp)
    # Deployed secured from the start: Trino starts once, already with single sign-on.
    found.oauth = juju.integrate(APP, "oauth", IDP, "oauth", "oauth")
    found.certificates = juju.integrate(
        APP, "certificates", TLS, "certificates", "tls-certificates"
    )
    boot(juju, unit)
    yield found
    idp.stop()


def _sign(juju: Juju, relation: RelationRecord, unit: Unit, ca: LabCA) -> None:
    csrs = relation.unit_data[unit.name]["certificate_signing_requests"]
    relation.app_data[TLS]["certificates"] = ca.answer(csrs)
    juju.settle()


def test_trino_registers_its_callback_and_waits_for_the_client(node: Node, juju: Juju):
    assert node.oauth is not None
    # Read back as Hydra's side of the library reads it: the schema is checked.
    ours = _load_data(node.oauth.app_data[APP], OAUTH_REQUIRER_JSON_SCHEMA)
    assert ours["redirect_uri"] == f"{node.https}/oauth2/callback"
    assert ours["grant_types"] == ["authorization_code"]
    state = juju.run(node.unit, lambda ctx, _: ctx.on.update_status())
    assert state.unit_status == testing.WaitingStatus(
        f"waiting for {IDP} to register {APP} as an OAuth client"
    )
    assert not (node.pod.etc / "config.properties").exists(), "nothing written while waiting"


def test_provider_data_turns_single_sign_on_on(node: Node, juju: Juju):
    assert node.oauth is not None
    node.client_secret = "first-Cl1ent-s3cret"
    secret_id = juju.add_secret(IDP, {"secret": node.client_secret}, grant_to=APP)
    node.oauth.app_data[IDP].update(node.idp.provider_databag(secret_id, node.ca))
    assert node.certificates is not None
    _sign(juju, node.certificates, node.unit, node.ca)  # settles
    state = become_active(juju, node.unit)
    assert state.unit_status == testing.ActiveStatus()
    config = (node.pod.etc / "config.properties").read_text()
    assert "http-server.authentication.type=PASSWORD,OAUTH2,JWT" in config
    assert f"http-server.authentication.oauth2.client-secret={node.client_secret}" in config
    assert oct((node.pod.etc / "config.properties").stat().st_mode & 0o777) == "0o600"
    plan = ops.pebble.Client(socket_path=node.pod.socket).get_plan().to_yaml()
    assert node.client_secret not in plan


def test_jwt_from_the_provider_runs_a_query_as_its_subject(node: Node):
    token = node.idp.token()

    assert once_listed(lambda: node.query(token, "SELECT current_user")) == [[SUBJECT]]
    assert "/.well-known/jwks.json" in node.idp.requests, "Trino read the provider's keys"


def test_jwt_signed_by_another_key_is_refused(node: Node):
    forged = node.idp.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    answer = requests.post(
        f"{node.https}/v1/statement",
        data="SELECT 1",
        headers={"Authorization": f"Bearer {forged}", "X-Trino-User": SUBJECT},
        verify=str(node.ca.path),
        timeout=30,
    )
    assert answer.status_code == 401, answer.text
    wrong_audience = node.idp.token(aud="another-client")
    answer = requests.post(
        f"{node.https}/v1/statement",
        data="SELECT 1",
        headers={"Authorization": f"Bearer {wrong_audience}"},
        verify=str(node.ca.path),
        timeout=30,
    )
    assert answer.status_code == 401, answer.text


def test_web_ui_sends_the_browser_to_the_provider(node: Node):
    location = f"{node.https}/ui/"
    for _ in range(5):
        answer = requests.get(
            location, allow_redirects=False, verify=str(node.ca.path), timeout=30
        )
        assert answer.status_code in (302, 303, 307), answer.text
        location = urljoin(location, answer.headers["Location"])
        if location.startswith(node.idp.url("/oauth2/auth")):
            break
    assert location.startswith(node.idp.url("/oauth2/auth")), location
    asked = parse_qs(urlsplit(location).query)
    assert asked["client_id"] == [CLIENT_ID]
    assert asked["redirect_uri"] == [f"{node.https}/oauth2/callback"]
    assert asked["response_type"] == ["code"]
    assert "openid" in asked["scope"][0].split()


def test_client_secret_rotation_reaches_trino(node: Node, juju: Juju):
    assert node.oauth is not None
    secret_id = node.oauth.app_data[IDP]["client_secret_id"]
    before = trino_pid(node.pod)
    juju.set_secret(secret_id, {"secret": "rotated-Cl1ent-s3cret"})
    juju.settle()
    config = (node.pod.etc / "config.properties").read_text()
    assert "http-server.authentication.oauth2.client-secret=rotated-Cl1ent-s3cret" in config
    assert node.client_secret not in config
    # Trino reads config.properties at start only: the charm restarts it on the new secret.
    wait_for("Trino restarted", lambda: _pid_or_none(node.pod) not in (None, before), timeout=60)


def _pid_or_none(pod: Pod) -> int | None:
    try:
        return trino_pid(pod)
    except AssertionError:  # between the old JVM's exit and the new one's start
        return None


def test_removing_the_provider_turns_single_sign_on_off(node: Node, juju: Juju):
    assert node.oauth is not None
    become_active(juju, node.unit)  # the restart of the rotation is over
    juju.remove_relation(node.oauth)
    config = (node.pod.etc / "config.properties").read_text()
    assert "oauth2" not in config
    assert "rotated-Cl1ent-s3cret" not in config
    state = become_active(juju, node.unit)
    assert state.unit_status == testing.ActiveStatus()
    answer = requests.get(
        f"{node.https}/ui/", allow_redirects=False, verify=str(node.ca.path), timeout=30
    )
    assert not answer.headers.get("Location", "").startswith(node.idp.issuer), answer.headers
