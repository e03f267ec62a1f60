"""Single sign-on: the oauth relation as Hydra fills it, the files Trino gets, the statuses."""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib

import jsonschema
import pytest
import yaml
from charmlibs.interfaces.oauth import ClientConfig
from charmlibs.interfaces.oauth._oauth import OAUTH_REQUIRER_JSON_SCHEMA, _load_data
from conftest import properties, read_files
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ops import testing

from charm import TrinoK8sCharm
from core import oauth, security
from core.truststore import TRUSTSTORE

IDP = "https://idp.example/iam"
CLIENT_ID = "b2f9e1c4-trino"
# Not a readable certificate: the truststore must skip it, not fail.
CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n"
POD = "trino-k8s-0.trino-k8s-endpoints.{model}.svc.cluster.local"
OAUTH2 = "http-server.authentication.oauth2"
JWT = "http-server.authentication.jwt"


def provider_data(secret_id: str, **overrides: str) -> dict[str, str]:
    """Hydra's databag once it created our client (charmlibs' OAuthProvider format)."""
    return {
        "issuer_url": IDP,
        "authorization_endpoint": f"{IDP}/oauth2/auth",
        "token_endpoint": f"{IDP}/oauth2/token",
        "introspection_endpoint": f"{IDP}/admin/oauth2/introspect",
        "userinfo_endpoint": f"{IDP}/userinfo",
        "jwks_endpoint": f"{IDP}/.well-known/jwks.json",
        "scope": "openid profile email phone",
        "client_id": CLIENT_ID,
        "client_secret_id": secret_id,
        "ca_chain": json.dumps([CA]),
        "jwt_access_token": "False",
        **overrides,
    }


def client_secret(value: str = "cl1ent-S3cret") -> testing.Secret:
    """The client secret Hydra owns and grants to the relation."""
    return testing.Secret(tracked_content={"secret": value}, owner=None)


def with_oauth(state: testing.State, relation: testing.Relation, *secrets: testing.Secret):
    return dataclasses.replace(
        state,
        relations={*state.relations, relation},
        secrets={*state.secrets, *secrets},
    )


def config_properties(etc: pathlib.Path) -> dict[str, str]:
    return properties(read_files(etc)["config.properties"])


@pytest.fixture
def signed_on(ctx, tls, etc):
    """A node with HTTPS whose provider has just sent the client: single sign-on is on."""
    state, _ = tls
    secret = client_secret()
    relation = testing.Relation(
        "oauth", remote_app_name="hydra", remote_app_data=provider_data(secret.id)
    )
    after = ctx.run(ctx.on.relation_changed(relation), with_oauth(state, relation, secret))
    return after, after.get_relation(relation.id), after.get_secret(id=secret.id)


class TestRegistration:
    def test_the_leader_registers_trino_as_the_library_expects(self, ctx, tls):
        state, _ = tls
        relation = testing.Relation("oauth", remote_app_name="hydra")

        after = ctx.run(ctx.on.relation_created(relation), with_oauth(state, relation))

        ours = after.get_relation(relation.id).local_app_data
        # Read back as the provider's side of the library reads it, schema checked.
        decoded = _load_data(ours, OAUTH_REQUIRER_JSON_SCHEMA)
        jsonschema.validate(decoded, OAUTH_REQUIRER_JSON_SCHEMA)
        assert decoded == {
            "redirect_uri": f"https://{POD.format(model=after.model.name)}:8443/oauth2/callback",
            "scope": "openid email profile",
            "grant_types": ["authorization_code"],
            "audience": [],
            "token_endpoint_auth_method": "client_secret_basic",
        }
        ClientConfig(**decoded).validate()  # what Hydra's side of the library reads back

    def test_the_callback_follows_an_https_ingress(self, ctx, tls):
        state, _ = tls
        relation = testing.Relation("oauth", remote_app_name="hydra")
        ingress = testing.Relation(
            "ingress",
            remote_app_data={"ingress": json.dumps({"url": "https://trino.lake.example/"})},
        )

        after = ctx.run(
            ctx.on.relation_changed(ingress),
            dataclasses.replace(state, relations={*state.relations, relation, ingress}),
        )

        ours = after.get_relation(relation.id).local_app_data
        assert ours["redirect_uri"] == "https://trino.lake.example/oauth2/callback"

    def test_a_non_leader_registers_nothing(self, ctx, tls):
        state, _ = tls
        relation = testing.Relation("oauth", remote_app_name="hydra")

        after = ctx.run(
            ctx.on.relation_created(relation),
            dataclasses.replace(with_oauth(state, relation), leader=False),
        )

        assert after.get_relation(relation.id).local_app_data == {}

    def test_until_the_client_exists_nothing_is_written(self, ctx, container, etc, trino):
        relation = testing.Relation("oauth", remote_app_name="hydra")

        after = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(leader=True, containers={container}, relations={relation}),
        )

        assert after.unit_status == testing.WaitingStatus(
            "waiting for hydra to register trino-k8s as an OAuth client"
        )
        assert read_files(etc) == {}


class TestSingleSignOn:
    def test_provider_data_configures_oauth2_the_web_ui_and_jwt(self, signed_on, etc):
        state, _, _ = signed_on

        config = config_properties(etc)
        assert config["http-server.authentication.type"] == "PASSWORD,OAUTH2,JWT"
        assert config["web-ui.authentication.type"] == "oauth2"
        assert {k: v for k, v in config.items() if k.startswith(OAUTH2)} == {
            f"{OAUTH2}.issuer": IDP,
            f"{OAUTH2}.client-id": CLIENT_ID,
            f"{OAUTH2}.client-secret": "cl1ent-S3cret",
            f"{OAUTH2}.scopes": "openid,email,profile",
            f"{OAUTH2}.principal-field": "sub",
            f"{OAUTH2}.oidc.discovery": "false",
            f"{OAUTH2}.auth-url": f"{IDP}/oauth2/auth",
            f"{OAUTH2}.token-url": f"{IDP}/oauth2/token",
            f"{OAUTH2}.jwks-url": f"{IDP}/.well-known/jwks.json",
            f"{OAUTH2}.userinfo-url": f"{IDP}/userinfo",
        }
        assert {k: v for k, v in config.items() if k.startswith(JWT)} == {
            f"{JWT}.key-file": f"{IDP}/.well-known/jwks.json",
            f"{JWT}.required-issuer": IDP,
            f"{JWT}.required-audience": CLIENT_ID,
            f"{JWT}.principal-field": "sub",
        }
        assert state.unit_status == testing.ActiveStatus()

    def test_the_client_secret_is_only_in_a_0600_file(self, signed_on, etc):
        state, _, _ = signed_on

        assert (etc / "config.properties").stat().st_mode & 0o777 == 0o600
        files_with_secret = [
            name for name, text in read_files(etc).items() if "cl1ent-S3cret" in text
        ]
        assert files_with_secret == ["config.properties"]
        plan = json.dumps(state.get_container("trino").plan.to_dict())
        assert "cl1ent-S3cret" not in plan
        assert "cl1ent-S3cret" not in str(state.unit_status)

    def test_the_charm_user_keeps_a_password_for_the_workers(self, signed_on, etc):
        files = read_files(etc)

        assert [line.split(":")[0] for line in files["password.db"].splitlines()] == [
            "trino-k8s-charm"
        ]
        assert "management.user" in config_properties(etc)

    def test_the_provider_ca_joins_the_jvm_truststore(self, ctx, tls, etc):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "idp CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        state, _ = tls
        secret = client_secret()
        relation = testing.Relation(
            "oauth",
            remote_app_name="hydra",
            remote_app_data=provider_data(secret.id, ca_chain=json.dumps([pem])),
        )

        ctx.run(ctx.on.relation_changed(relation), with_oauth(state, relation, secret))

        truststore = (etc / TRUSTSTORE.removeprefix("/etc/trino/")).read_bytes()
        assert ca.public_bytes(serialization.Encoding.DER) in truststore
        jvm = read_files(etc)["jvm.config"]
        assert f"-Djavax.net.ssl.trustStore={TRUSTSTORE}" in jvm

    def test_a_rotated_client_secret_reaches_trino(self, ctx, signed_on, etc, pebble_calls):
        state, _, secret = signed_on
        rotated = dataclasses.replace(secret, latest_content={"secret": "r0tated-S3cret"})
        pebble_calls.restarts.clear()

        after = ctx.run(
            ctx.on.secret_changed(rotated),
            dataclasses.replace(state, secrets={*(state.secrets - {secret}), rotated}),
        )

        assert config_properties(etc)[f"{OAUTH2}.client-secret"] == "r0tated-S3cret"
        assert pebble_calls.restarts == [("trino",)]
        assert after.unit_status == testing.ActiveStatus()

    def test_the_provider_going_away_turns_single_sign_on_off(self, ctx, signed_on, etc):
        state, relation, _ = signed_on

        after = ctx.run(ctx.on.relation_broken(relation), state)

        config = config_properties(etc)
        assert "http-server.authentication.type" not in config
        assert not any(key.startswith(("web-ui.", OAUTH2, JWT)) for key in config)
        assert "cl1ent-S3cret" not in read_files(etc)["config.properties"]
        assert after.unit_status == testing.ActiveStatus()

    def test_users_and_single_sign_on_together(self, ctx, signed_on, etc):
        state, _, _ = signed_on
        users = testing.Secret(tracked_content={"users": yaml.safe_dump({"alice": "s3cret"})})

        ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                state, secrets={*state.secrets, users}, config={"user-secret-id": users.id}
            ),
        )

        names = [line.split(":")[0] for line in read_files(etc)["password.db"].splitlines()]
        assert names == ["alice", "trino-k8s-charm"]
        assert config_properties(etc)["http-server.authentication.type"] == "PASSWORD,OAUTH2,JWT"


class TestRefused:
    def test_without_https_it_blocks_and_writes_nothing(self, ctx, container, etc, trino):
        secret = client_secret()
        relation = testing.Relation(
            "oauth", remote_app_name="hydra", remote_app_data=provider_data(secret.id)
        )

        after = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(
                leader=True, containers={container}, relations={relation}, secrets={secret}
            ),
        )

        assert after.unit_status == testing.BlockedStatus(
            "oauth: single sign-on needs HTTPS: `juju integrate trino-k8s:certificates "
            "<tls provider>` (or an ingress serving https)"
        )
        assert read_files(etc) == {}

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            (
                {"jwks_endpoint": "http://idp.example/jwks"},
                "oauth: hydra sent jwks_endpoint='http://idp.example/jwks', not an https URL",
            ),
            ({"issuer_url": "not a url"}, "oauth: hydra sent issuer_url='not a url'"),
            ({"client_id": "  "}, "oauth: hydra sent no client id or client secret"),
        ],
    )
    def test_unusable_provider_data_blocks_and_keeps_the_files(
        self, ctx, signed_on, etc, pebble_calls, overrides, message
    ):
        state, relation, secret = signed_on
        before = read_files(etc)
        pebble_calls.restarts.clear()
        bad = dataclasses.replace(relation, remote_app_data=provider_data(secret.id, **overrides))

        after = ctx.run(
            ctx.on.relation_changed(bad),
            dataclasses.replace(state, relations={*(state.relations - {relation}), bad}),
        )

        assert isinstance(after.unit_status, testing.BlockedStatus)
        assert after.unit_status.message.startswith(message)
        assert read_files(etc) == before
        assert pebble_calls.restarts == []

    def test_data_off_the_schema_fails_no_hook(self, ctx, signed_on, etc, pebble_calls):
        state, relation, secret = signed_on
        before = read_files(etc)
        data = provider_data(secret.id)
        del data["jwks_endpoint"]  # required by the provider schema
        bad = dataclasses.replace(relation, remote_app_data=data)

        after = ctx.run(
            ctx.on.relation_changed(bad),
            dataclasses.replace(state, relations={*(state.relations - {relation}), bad}),
        )

        assert after.unit_status == testing.BlockedStatus(
            "oauth: hydra sent data that does not match the oauth interface; check its "
            "revision or `juju remove-relation trino-k8s:oauth hydra`"
        )
        assert read_files(etc) == before

    def test_a_secret_not_granted_waits_and_keeps_the_files(self, ctx, signed_on, etc):
        state, relation, secret = signed_on
        before = read_files(etc)

        after = ctx.run(
            ctx.on.relation_changed(relation),
            dataclasses.replace(state, secrets=state.secrets - {secret}),
        )

        assert after.unit_status == testing.WaitingStatus(
            "waiting for hydra to grant the client secret"
        )
        assert read_files(etc) == before


class TestCore:
    def test_authentication_types(self):
        def types(password_file: bool, ldap: bool = False, oauth: bool = False):
            return security.authentication(password_file=password_file, ldap=ldap, oauth=oauth)

        assert types(False).types == ()
        assert types(True).types == ("PASSWORD",)
        assert types(True, oauth=True).types == ("PASSWORD", "OAUTH2", "JWT")
        assert types(False, oauth=True).types == ("OAUTH2", "JWT")
        both = types(True, ldap=True, oauth=True)
        assert both.types == ("PASSWORD", "OAUTH2", "JWT")
        assert both.password_authenticators == ("file", "ldap")

    @pytest.mark.parametrize(
        ("url", "callback"),
        [
            ("https://trino.example", "https://trino.example/oauth2/callback"),
            ("https://trino.example:8443/", "https://trino.example:8443/oauth2/callback"),
            ("https://lake.example/model-trino", "https://lake.example/oauth2/callback"),
        ],
    )
    def test_the_callback_is_at_the_origin(self, url, callback):
        assert oauth.redirect_uri(url) == callback

    def test_the_client_secret_is_not_in_the_repr(self):
        provider = oauth.OAuthProvider(IDP, IDP, IDP, IDP, "", CLIENT_ID, "s3cret", CA)
        assert "s3cret" not in repr(provider)
        assert oauth.problem(provider, "hydra") == ""
        assert f"{OAUTH2}.userinfo-url" not in oauth.properties(provider)


class TestWorkers:
    """Workers run the coordinator's authenticators; the client secret travels in its secret."""

    def publish(self, container) -> tuple[testing.State, testing.Relation]:
        ctx = testing.Context(TrinoK8sCharm, app_name="trino")
        secret = client_secret()
        oauth_relation = testing.Relation(
            "oauth", remote_app_name="hydra", remote_app_data=provider_data(secret.id)
        )
        ingress = testing.Relation(
            "ingress", remote_app_data={"ingress": json.dumps({"url": "https://lake.example"})}
        )
        relation = testing.Relation("trino-coordinator", remote_app_name="trino-worker")
        state = ctx.run(
            ctx.on.relation_joined(relation, remote_unit=0),
            testing.State(
                leader=True,
                containers={container},
                relations={relation, ingress, oauth_relation, testing.PeerRelation("trino-peers")},
                secrets={secret},
                config={"charm-function": "coordinator"},
            ),
        )
        return state, state.get_relation(relation.id)

    def worker(self, published, relation, tmp_path, drop: str = ""):
        etc = tmp_path / "worker"
        etc.mkdir()
        container = testing.Container(
            "trino",
            can_connect=True,
            mounts={"etc": testing.Mount(location="/etc/trino", source=etc)},
        )
        secret = next(s for s in published.secrets if s.label == "trino-cluster")
        content = dict(secret.latest_content or secret.tracked_content)
        content.pop(drop, None)
        joined = testing.Relation(
            "trino-worker", remote_app_name="trino", remote_app_data=dict(relation.local_app_data)
        )
        ctx = testing.Context(TrinoK8sCharm, app_name="trino-worker", unit_id=1)
        state = ctx.run(
            ctx.on.pebble_ready(container),
            testing.State(
                containers={container},
                relations={joined, testing.PeerRelation("trino-peers")},
                secrets={testing.Secret(content, id=secret.id)},
                config={"charm-function": "worker"},
            ),
        )
        return state, etc

    def test_a_worker_runs_the_same_authenticators(self, etc, container, trino, tmp_path):
        published, relation = self.publish(container)
        settings = json.loads(relation.local_app_data["settings"])
        assert settings["authentication"] == "password"
        assert json.loads(settings["oauth"])["client_id"] == CLIENT_ID
        assert "cl1ent-S3cret" not in json.dumps(relation.local_app_data)

        state, worker_etc = self.worker(published, relation, tmp_path)

        coordinator, worker = config_properties(etc), config_properties(worker_etc)
        assert worker["http-server.authentication.type"] == "PASSWORD,OAUTH2,JWT"
        auth = [k for k in coordinator if k.startswith(("web-ui.", OAUTH2, JWT))]
        assert {k: worker[k] for k in auth} == {k: coordinator[k] for k in auth}
        assert worker[f"{OAUTH2}.client-secret"] == "cl1ent-S3cret"
        assert (worker_etc / "config.properties").stat().st_mode & 0o777 == 0o600
        assert state.unit_status == testing.ActiveStatus()

    def test_a_worker_without_the_client_secret_refuses(self, container, trino, tmp_path):
        published, relation = self.publish(container)

        state, worker_etc = self.worker(published, relation, tmp_path, drop="oauth-client-secret")

        assert state.unit_status == testing.BlockedStatus(
            "trino turns single sign-on on without passwords or its client secret: run the "
            "same charm revision on both applications"
        )
        assert read_files(worker_etc) == {}
