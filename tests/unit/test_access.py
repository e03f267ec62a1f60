"""Access as an operator sets it up: ingress, TLS, users, rules and trino-catalog clients."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import bcrypt
import pytest
import yaml
from charmlibs.interfaces.tls_certificates import CertificateSigningRequest
from conftest import properties, read_files
from ops import testing
from providers import sign

USERS = {"alice": "s3cret", "bob": "hunter2"}
CHARM_USER = "trino-k8s-charm"
UNIT_HOST = "trino-k8s-0.trino-k8s-endpoints.{model}.svc.cluster.local"


def user_secret(
    users: dict[str, str] | None = None, content: dict[str, str] | None = None
) -> testing.Secret:
    """An operator's secret granted to the application."""
    return testing.Secret(tracked_content=content or {"users": yaml.safe_dump(users or USERS)})


def config_properties(etc: pathlib.Path) -> dict[str, str]:
    return properties(read_files(etc)["config.properties"])


def mode(etc: pathlib.Path, name: str) -> int:
    return (etc / name).stat().st_mode & 0o777


class TestIngress:
    def test_databags_as_the_interface_says(self, ctx, container, trino):
        relation = testing.Relation("ingress", remote_app_name="traefik")

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(leader=True, containers={container}, relations={relation}),
        )

        ours = state.get_relation(relation.id)
        assert {k: json.loads(v) for k, v in ours.local_app_data.items()} == {
            "name": "trino-k8s",
            "model": state.model.name,
            "port": 8080,
            "scheme": "http",
        }
        unit_data = {k: ours.local_unit_data[k] for k in ("host", "ip")}
        assert {k: json.loads(v) for k, v in unit_data.items()} == {
            "host": UNIT_HOST.format(model=state.model.name),
            "ip": "192.0.2.0",
        }

    def test_a_non_leader_writes_its_address_only(self, ctx, container, trino):
        relation = testing.Relation("ingress", remote_app_name="traefik")
        # Every unit of a worker application serves, once its coordinator shares the cluster.
        secret = testing.Secret({"shared-secret": "c2hhcmVk", "catalog-credentials": "{}"})
        coordinator = testing.Relation(
            "trino-worker",
            remote_app_name="trino",
            remote_app_data={
                "discovery-uri": json.dumps("http://trino-0.trino-endpoints.m.svc:8080"),
                "environment": json.dumps("m"),
                "catalogs": "{}",
                "settings": "{}",
                "secret-id": json.dumps(secret.id),
            },
        )

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(
                containers={container},
                relations={relation, coordinator},
                secrets={secret},
                config={"charm-function": "worker"},
            ),
        )

        ours = state.get_relation(relation.id)
        assert ours.local_app_data == {}
        assert {"host", "ip"} <= set(ours.local_unit_data)

    def test_a_standby_coordinator_gives_no_ip_but_keeps_a_host(self, ctx, container, trino):
        """It runs no Trino by design, yet traefik drops every route if a unit has no host.

        Not told the leader yet, it can only name itself; test_interop checks that a
        standby names the serving coordinator once it knows it.
        """
        relation = testing.Relation(
            "ingress",
            remote_app_name="traefik",
            local_unit_data={"host": json.dumps("old"), "ip": json.dumps("10.1.1.1")},
        )

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(containers={container}, relations={relation}),
        )

        assert state.unit_status.message.startswith("standby:")
        data = state.get_relation(relation.id).local_unit_data
        assert "ip" not in data
        assert json.loads(data["host"]) == UNIT_HOST.format(model=state.model.name)

    def test_trino_trusts_forwarded_headers_behind_an_ingress(self, ctx, container, etc, trino):
        relation = testing.Relation(
            "ingress", remote_app_data={"ingress": json.dumps({"url": "http://lake/trino"})}
        )

        ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(leader=True, containers={container}, relations={relation}),
        )

        assert config_properties(etc)["http-server.process-forwarded"] == "true"

    def test_unreadable_provider_data_is_no_url(self, ctx, container, etc, trino):
        relation = testing.Relation("ingress", remote_app_data={"ingress": "{not json"})
        client = testing.Relation("trino-catalog", remote_app_name="superset")

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(leader=True, containers={container}, relations={relation, client}),
        )

        data = state.get_relation(client.id).local_app_data
        assert data["trino_url"] == f"{UNIT_HOST.format(model=state.model.name)}:8080"


class TestTls:
    def test_the_request_covers_the_units_service_names(self, ctx, container, trino):
        relation = testing.Relation("certificates")

        state = ctx.run(
            ctx.on.relation_created(relation),
            testing.State(leader=True, containers={container}, relations={relation}),
        )

        requests = json.loads(
            state.get_relation(relation.id).local_unit_data["certificate_signing_requests"]
        )
        csr = CertificateSigningRequest.from_string(requests[0]["certificate_signing_request"])
        model = state.model.name
        assert csr.sans_dns == {
            UNIT_HOST.format(model=model),
            f"trino-k8s.{model}.svc.cluster.local",
            "trino-k8s",
        }
        assert not (container.mounts["etc"].source / "keystore.pem").exists()

    def test_a_signed_certificate_turns_on_https(self, tls, etc):
        state, relation = tls

        config = config_properties(etc)
        assert config["http-server.https.enabled"] == "true"
        assert config["http-server.https.port"] == "8443"
        assert config["http-server.https.keystore.path"] == "/etc/trino/keystore.pem"
        keystore = read_files(etc)["keystore.pem"]
        assert keystore.startswith("-----BEGIN RSA PRIVATE KEY-----") or keystore.startswith(
            "-----BEGIN PRIVATE KEY-----"
        )
        certificate = json.loads(relation.remote_app_data["certificates"])[0]["certificate"]
        assert certificate.strip() in keystore
        assert keystore.count("BEGIN CERTIFICATE") == 2  # the certificate, then its CA
        assert mode(etc, "keystore.pem") == 0o600
        assert state.opened_ports == {testing.TCPPort(8080), testing.TCPPort(8443)}
        assert "PRIVATE KEY" not in json.dumps(state.get_container("trino").plan.to_dict())

    def test_a_renewed_certificate_rolls_the_node(self, ctx, tls, etc, pebble_calls):
        state, relation = tls
        before = read_files(etc)["keystore.pem"]

        renewed = sign(state, relation)
        ctx.run(ctx.on.relation_changed(renewed), dataclasses.replace(state, relations={renewed}))

        assert read_files(etc)["keystore.pem"] != before
        assert pebble_calls.restarts == [("trino",)]

    def test_the_ingress_scheme_follows(self, ctx, tls):
        state, _ = tls
        ingress = testing.Relation("ingress")

        after = ctx.run(
            ctx.on.relation_changed(ingress),
            dataclasses.replace(state, relations={*state.relations, ingress}),
        )

        data = after.get_relation(ingress.id).local_app_data
        assert (json.loads(data["scheme"]), json.loads(data["port"])) == ("https", 8443)

    def test_losing_the_relation_turns_https_off(self, ctx, tls, etc):
        state, relation = tls

        ctx.run(ctx.on.relation_broken(relation), state)

        assert "http-server.https.enabled" not in config_properties(etc)
        assert "keystore.pem" not in read_files(etc)  # no stale key left behind


class TestAuthentication:
    def test_users_without_a_secure_path_block_with_the_fix(self, ctx, container, etc, trino):
        secret = user_secret()

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                secrets={secret},
                config={"user-secret-id": secret.id},
            ),
        )

        assert state.unit_status == testing.BlockedStatus(
            "user-secret-id: passwords need a secure path: `juju integrate "
            "trino-k8s:certificates <tls provider>` (or an ingress serving https)"
        )
        assert read_files(etc) == {}  # nothing weaker is ever applied

    def test_users_wait_for_a_certificate_on_its_way(self, ctx, container, etc, trino):
        secret = user_secret()
        relation = testing.Relation("certificates")

        state = ctx.run(
            ctx.on.relation_created(relation),
            testing.State(
                leader=True,
                containers={container},
                relations={relation},
                secrets={secret},
                config={"user-secret-id": secret.id},
            ),
        )

        assert state.unit_status == testing.WaitingStatus(
            "waiting for the certificate before turning passwords on"
        )
        assert read_files(etc) == {}

    def test_users_with_tls_turn_on_passwords(self, ctx, tls, etc, pebble_calls):
        state, _ = tls
        secret = user_secret()

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                state,
                secrets={*state.secrets, secret},
                config={"user-secret-id": secret.id},
            ),
        )

        config = config_properties(etc)
        assert config["http-server.authentication.type"] == "PASSWORD"
        assert len(config["internal-communication.shared-secret"]) == 684
        for text in read_files(etc).values():
            assert "allow-insecure-over-http" not in text
        authenticator = properties(read_files(etc)["password-authenticator.properties"])
        assert authenticator == {
            "password-authenticator.name": "file",
            "file.password-file": "/etc/trino/password.db",
            "file.refresh-period": "5s",
        }
        assert after.unit_status == testing.ActiveStatus()

    def test_password_db_verifies_every_user_with_bcrypt(self, ctx, tls, etc):
        state, _ = tls
        secret = user_secret()

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                state, secrets={*state.secrets, secret}, config={"user-secret-id": secret.id}
            ),
        )

        assert mode(etc, "password.db") == 0o600
        hashes = dict(line.split(":", 1) for line in read_files(etc)["password.db"].splitlines())
        charm_secret = next(s for s in after.secrets if s.label == "trino-charm-user")
        expected = {**USERS, CHARM_USER: charm_secret.tracked_content["password"]}
        assert set(hashes) == set(expected)
        for user, password in expected.items():
            assert bcrypt.checkpw(password.encode(), hashes[user].encode())
        assert charm_secret.owner == "app"

    def test_rotating_users_rewrites_password_db_without_a_restart(
        self, ctx, tls, etc, pebble_calls
    ):
        state, _ = tls
        secret = user_secret()
        state = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                state, secrets={*state.secrets, secret}, config={"user-secret-id": secret.id}
            ),
        )
        before = read_files(etc)
        pebble_calls.restarts.clear()
        rotated = dataclasses.replace(
            secret, latest_content={"users": yaml.safe_dump({"alice": "s3cret", "carol": "c"})}
        )

        ctx.run(
            ctx.on.secret_changed(rotated),
            dataclasses.replace(state, secrets={*(state.secrets - {secret}), rotated}),
        )

        after = read_files(etc)
        assert pebble_calls.restarts == []
        changed = {name for name in after if after[name] != before.get(name)}
        assert changed == {"password.db"}
        lines = dict(line.split(":", 1) for line in after["password.db"].splitlines())
        assert set(lines) == {"alice", "carol", CHARM_USER}
        old = dict(line.split(":", 1) for line in before["password.db"].splitlines())
        assert lines["alice"] == old["alice"]  # unchanged users keep their hash
        assert bcrypt.checkpw(b"c", lines["carol"].encode())

    def test_resetting_users_turns_authentication_off_and_removes_its_files(self, ctx, tls, etc):
        state, _ = tls
        secret = user_secret()
        state = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                state, secrets={*state.secrets, secret}, config={"user-secret-id": secret.id}
            ),
        )
        assert "password.db" in read_files(etc)

        ctx.run(ctx.on.config_changed(), dataclasses.replace(state, config={}))

        files = read_files(etc)
        assert "password.db" not in files
        assert "password-authenticator.properties" not in files
        assert "http-server.authentication.type" not in config_properties(etc)

    def test_unchanged_users_cost_no_bcrypt(self, ctx, tls, etc, monkeypatch):
        state, _ = tls
        secret = user_secret()
        state = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                state, secrets={*state.secrets, secret}, config={"user-secret-id": secret.id}
            ),
        )
        before = read_files(etc)["password.db"]

        def no_bcrypt(*args):
            raise AssertionError("bcrypt was called")

        monkeypatch.setattr(bcrypt, "hashpw", no_bcrypt)
        monkeypatch.setattr(bcrypt, "checkpw", no_bcrypt)
        ctx.run(ctx.on.update_status(), state)

        assert read_files(etc)["password.db"] == before

    def test_an_https_ingress_is_a_secure_path(self, ctx, container, etc, trino):
        secret = user_secret()
        ingress = testing.Relation(
            "ingress", remote_app_data={"ingress": json.dumps({"url": "https://lake/trino"})}
        )

        state = ctx.run(
            ctx.on.relation_changed(ingress),
            testing.State(
                leader=True,
                containers={container},
                relations={ingress},
                secrets={secret},
                config={"user-secret-id": secret.id},
            ),
        )

        config = config_properties(etc)
        assert config["http-server.authentication.type"] == "PASSWORD"
        assert config["http-server.process-forwarded"] == "true"
        assert "http-server.https.enabled" not in config
        assert state.unit_status == testing.ActiveStatus()

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ({"password": "x"}, "has no 'users' key"),
            ({"users": "alice: [oops"}, "is not YAML"),
            ({"users": "just a string"}, "must map each user to its password"),
        ],
    )
    def test_a_bad_user_secret_blocks_by_name(self, ctx, tls, etc, content, message):
        state, _ = tls
        secret = user_secret(content=content)
        before = read_files(etc)

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                state, secrets={*state.secrets, secret}, config={"user-secret-id": secret.id}
            ),
        )

        assert after.unit_status.name == "blocked"
        assert after.unit_status.message.startswith("user-secret-id: ")
        assert secret.id in after.unit_status.message
        assert message in after.unit_status.message
        assert read_files(etc) == before

    def test_a_secret_not_granted_blocks_with_the_grant_command(self, ctx, tls):
        state, _ = tls

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(state, config={"user-secret-id": "secret:d1234567890abcdefghi"}),
        )

        assert after.unit_status == testing.BlockedStatus(
            "user-secret-id: secret secret:d1234567890abcdefghi does not exist or is not "
            "granted: run `juju grant-secret secret:d1234567890abcdefghi trino-k8s`"
        )

    def test_the_charm_user_name_is_reserved(self, ctx, tls):
        state, _ = tls
        secret = user_secret({CHARM_USER: "mine"})

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                state, secrets={*state.secrets, secret}, config={"user-secret-id": secret.id}
            ),
        )

        assert after.unit_status.message.startswith(
            f"user-secret-id: user '{CHARM_USER}' is reserved"
        )

    def test_the_worker_drain_authenticates_as_the_charm_user(self, ctx, tls, monkeypatch):
        state, _ = tls
        secret = user_secret()
        state = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                state, secrets={*state.secrets, secret}, config={"user-secret-id": secret.id}
            ),
        )
        charm_password = next(
            s for s in state.secrets if s.label == "trino-charm-user"
        ).tracked_content["password"]
        with ctx(ctx.on.update_status(), state) as manager:
            credentials = manager.charm.access.credentials(
                manager.charm.snapshot.inputs().security
            )
        assert credentials is not None
        assert credentials.password == charm_password
        assert credentials.base_url == f"https://{UNIT_HOST.format(model=state.model.name)}:8443"
        assert credentials.ca.startswith("-----BEGIN CERTIFICATE-----")
        assert not credentials.forwarded_https


class TestRules:
    def test_operator_rules_follow_the_charms_and_reload_without_restart(
        self, ctx, container, etc, trino, pebble_calls
    ):
        state = ctx.run(
            ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
        )
        pebble_calls.restarts.clear()
        rules = {"catalogs": [{"user": "alice", "catalog": "sales", "allow": "all"}]}

        ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(state, config={"access-control-rules": json.dumps(rules)}),
        )

        written = json.loads(read_files(etc)["rules.json"])
        assert written["catalogs"] == [
            {"user": f"{CHARM_USER}|trino-metrics", "allow": "none"},
            {"user": "alice", "catalog": "sales", "allow": "all"},
        ]
        assert written["system_information"][0] == {
            "user": CHARM_USER,
            "allow": ["read", "write"],
        }
        assert pebble_calls.restarts == []

    def test_invalid_json_is_refused_by_name(self, ctx, container, etc, trino):
        state = ctx.run(
            ctx.on.pebble_ready(container), testing.State(leader=True, containers={container})
        )
        before = read_files(etc)

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(state, config={"access-control-rules": "{catalogs: []"}),
        )

        assert after.unit_status.name == "blocked"
        assert after.unit_status.message.startswith("access-control-rules: not valid JSON")
        assert read_files(etc) == before


class TestTrinoCatalogClients:
    @pytest.fixture
    def client(self) -> testing.Relation:
        return testing.Relation(
            "trino-catalog", remote_app_name="superset", remote_app_data={"app_name": "superset"}
        )

    def test_databags_and_a_granted_user(self, ctx, container, trino, client):
        state = ctx.run(
            ctx.on.relation_changed(client),
            testing.State(
                leader=True,
                containers={container},
                relations={client},
                config={"catalog-config": "tpch:\n  connector: tpch\nmem:\n  connector: memory\n"},
            ),
        )

        data = state.get_relation(client.id).local_app_data
        assert set(data) == {"trino_url", "trino_catalogs", "trino_credentials_secret_id"}
        # The coordinator's own pod, not the service (standby units sit behind that too).
        assert data["trino_url"] == f"{UNIT_HOST.format(model=state.model.name)}:8080"
        assert json.loads(data["trino_catalogs"]) == [
            {"name": "mem", "connector": "memory", "description": "memory catalog (config)"},
            {"name": "tpch", "connector": "tpch", "description": "tpch catalog (config)"},
        ]
        secret = state.get_secret(id=data["trino_credentials_secret_id"])
        assert client.id in secret.remote_grants
        assert secret.tracked_content["username"] == f"superset-{client.id}"
        assert len(secret.tracked_content["password"]) >= 24
        assert secret.tracked_content["password"] not in json.dumps(data)

    def test_the_url_is_the_ingress_url(self, ctx, container, trino, client):
        ingress = testing.Relation(
            "ingress", remote_app_data={"ingress": json.dumps({"url": "https://lake.example/t"})}
        )

        state = ctx.run(
            ctx.on.relation_changed(client),
            testing.State(leader=True, containers={container}, relations={client, ingress}),
        )

        assert state.get_relation(client.id).local_app_data["trino_url"] == "lake.example:443"

    def test_each_client_is_a_user_in_password_db(self, ctx, tls, etc, client):
        state, _ = tls
        other = testing.Relation("trino-catalog", remote_app_name="ranger")
        secret = user_secret()

        after = ctx.run(
            ctx.on.relation_changed(client),
            dataclasses.replace(
                state,
                relations={*state.relations, client, other},
                secrets={*state.secrets, secret},
                config={"user-secret-id": secret.id},
            ),
        )

        hashes = dict(line.split(":", 1) for line in read_files(etc)["password.db"].splitlines())
        secret_ids = set()
        for relation in (client, other):
            secret_id = after.get_relation(relation.id).local_app_data[
                "trino_credentials_secret_id"
            ]
            granted = after.get_secret(id=secret_id)
            content = granted.tracked_content
            assert bcrypt.checkpw(
                content["password"].encode(), hashes[content["username"]].encode()
            )
            assert set(granted.remote_grants) == {relation.id}  # that relation alone
            secret_ids.add(secret_id)
        assert len(secret_ids) == 2  # one user, one secret per relation

    def test_a_client_that_leaves_loses_its_user(self, ctx, tls, etc, client, pebble_calls):
        state, _ = tls
        secret = user_secret()
        state = ctx.run(
            ctx.on.relation_changed(client),
            dataclasses.replace(
                state,
                relations={*state.relations, client},
                secrets={*state.secrets, secret},
                config={"user-secret-id": secret.id},
            ),
        )
        username = f"superset-{client.id}"
        assert username in read_files(etc)["password.db"]
        pebble_calls.restarts.clear()

        after = ctx.run(ctx.on.relation_broken(state.get_relation(client.id)), state)

        assert username not in read_files(etc)["password.db"]
        assert not [s for s in after.secrets if s.label == f"trino-catalog-{client.id}"]
        assert pebble_calls.restarts == []

    def test_a_non_leader_makes_no_user_and_writes_nothing(self, ctx, container, trino, client):
        state = ctx.run(
            ctx.on.relation_changed(client),
            testing.State(containers={container}, relations={client}),
        )

        assert state.get_relation(client.id).local_app_data == {}
        assert not [s for s in state.secrets if s.label and s.label.startswith("trino-catalog")]
        after = ctx.run(ctx.on.relation_broken(client), state)
        assert after.get_relation(client.id).local_app_data == {}

    def test_the_secret_is_granted_once(self, ctx, container, trino, client):
        state = ctx.run(
            ctx.on.relation_changed(client),
            testing.State(leader=True, containers={container}, relations={client}),
        )
        data = dict(state.get_relation(client.id).local_app_data)

        again = ctx.run(ctx.on.update_status(), state)

        assert again.get_relation(client.id).local_app_data == data
        secret = again.get_secret(id=data["trino_credentials_secret_id"])
        assert secret.latest_content == secret.tracked_content  # never set again
        assert set(secret.remote_grants) == {client.id}
