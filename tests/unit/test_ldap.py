"""LDAP logins and groups as an operator sets them up: the ldap relation, options, secrets."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
import yaml
from charmlibs.interfaces.ldap import LdapProviderData, LdapRequirerData
from conftest import properties, read_files
from ops import testing

from core import security

DER = b"\x30\x82 a CA's DER stands here"
CA = (
    "-----BEGIN CERTIFICATE-----\n"
    + base64.b64encode(DER).decode()
    + "\n-----END CERTIFICATE-----\n"
)
BIND_DN = "cn=trino-k8s,ou=m,dc=glauth,dc=com"
LDAPS = "ldaps://glauth-k8s-0.glauth-k8s-endpoints.m.svc.cluster.local:3894"
AUTHENTICATOR = "password-authenticator-ldap.properties"


def bind_secret(password: str = "b1nd-pw") -> testing.Secret:  # noqa: S107
    """The provider's bind password secret, as glauth-k8s shares it."""
    return testing.Secret(tracked_content={"password": password}, owner=None)


def provider_data(secret: testing.Secret, ldaps: bool = True) -> dict[str, str]:
    """glauth-k8s's app databag, written through the library's own model."""
    offer = LdapProviderData(
        urls=["ldap://glauth-k8s-0.glauth-k8s-endpoints.m.svc.cluster.local:3893"],
        ldaps_urls=[LDAPS] if ldaps else [],
        base_dn="dc=glauth,dc=com",
        starttls=True,
        bind_dn=BIND_DN,
        bind_password="not in the databag",
        bind_password_secret=secret.id,
        auth_method="simple",
    )
    return {key: str(value) for key, value in offer.model_dump().items() if value is not None}


def ldap_relation(secret: testing.Secret | None = None, **kwargs) -> testing.Relation:
    data = provider_data(secret, **kwargs) if secret else {}
    return testing.Relation("ldap", remote_app_name="glauth-k8s", remote_app_data=data)


def with_(state: testing.State, *, relations=(), secrets=(), config=None) -> testing.State:
    return dataclasses.replace(
        state,
        relations={*state.relations, *relations},
        secrets={*state.secrets, *secrets},
        config={**state.config, **(config or {})},
    )


def mode(etc, name: str) -> int:
    return (etc / name).stat().st_mode & 0o777


class TestRelation:
    def test_the_leader_asks_for_a_bind_account_as_the_library_models_it(self, ctx, tls):
        relation = ldap_relation()

        state = ctx.run(ctx.on.relation_created(relation), with_(tls[0], relations={relation}))

        data = state.get_relation(relation.id).local_app_data
        assert LdapRequirerData(**data) == LdapRequirerData(
            user="trino-k8s", group=state.model.name
        )
        assert state.unit_status == testing.WaitingStatus(
            "waiting for glauth-k8s to send the LDAP server (ldap)"
        )

    def test_until_the_provider_answers_nothing_is_written(self, ctx, container, etc, trino):
        relation = ldap_relation()

        ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(leader=True, containers={container}, relations={relation}),
        )

        assert read_files(etc) == {}

    def test_the_provider_s_server_becomes_trino_s_ldap_authenticator(self, ctx, tls, etc):
        state, _ = tls
        secret = bind_secret()
        relation = ldap_relation(secret)

        after = ctx.run(
            ctx.on.relation_changed(relation),
            with_(state, relations={relation}, secrets={secret}, config={"ldap-ca-cert": CA}),
        )

        files = read_files(etc)
        assert properties(files[AUTHENTICATOR]) == {
            "password-authenticator.name": "ldap",
            "ldap.url": LDAPS,
            "ldap.user-base-dn": "dc=glauth,dc=com",
            "ldap.bind-dn": BIND_DN,
            "ldap.bind-password": "b1nd-pw",
            "ldap.group-auth-pattern": "(cn=${USER})",
        }
        # The JVM trusts the LDAP CA (Trino 476's group provider fails with
        # ldap.ssl.truststore.path: "SSLContext was not set", seen live).
        assert (
            "-Djavax.net.ssl.trustStore=/etc/trino/certs/jvm-truststore.jks"
            in files["jvm.config"].splitlines()
        )
        assert DER in (etc / "certs" / "jvm-truststore.jks").read_bytes()
        config = properties(files["config.properties"])
        assert config["http-server.authentication.type"] == "PASSWORD"
        # The charm's own password file first: its user never depends on the LDAP server.
        assert config["password-authenticator.config-files"] == (
            "/etc/trino/password-authenticator.properties,"
            "/etc/trino/password-authenticator-ldap.properties"
        )
        assert mode(etc, AUTHENTICATOR) == 0o600
        assert after.unit_status == testing.ActiveStatus()

    def test_ldap_groups_come_from_the_users_member_of(self, ctx, tls, etc):
        state, _ = tls
        secret = bind_secret()
        relation = ldap_relation(secret)

        ctx.run(
            ctx.on.relation_changed(relation), with_(state, relations={relation}, secrets={secret})
        )

        groups = properties(read_files(etc)["group-provider.properties"])
        assert groups == {
            "group-provider.name": "ldap",
            "ldap.url": LDAPS,
            "ldap.admin-user": BIND_DN,
            "ldap.admin-password": "b1nd-pw",
            "ldap.user-base-dn": "dc=glauth,dc=com",
            "ldap.user-search-filter": "(cn={0})",
            "ldap.group-name-attribute": "cn",
            "ldap.use-group-filter": "false",
            "ldap.user-member-of-attribute": "memberOf",
        }
        assert mode(etc, "group-provider.properties") == 0o600

    def test_secrets_stay_out_of_the_plan_logs_and_status(self, ctx, tls, etc, caplog):
        state, _ = tls
        secret = bind_secret("V3ry-s3cret")
        relation = ldap_relation(secret)

        after = ctx.run(
            ctx.on.relation_changed(relation), with_(state, relations={relation}, secrets={secret})
        )

        plan = after.get_container("trino").plan.to_dict()
        assert "V3ry-s3cret" not in json.dumps(plan)
        assert "V3ry-s3cret" not in caplog.text
        assert "V3ry-s3cret" not in after.unit_status.message
        assert "V3ry-s3cret" not in json.dumps(
            dict(after.get_relation(relation.id).local_app_data)
        )

    def test_a_rotated_bind_password_reaches_trino(self, ctx, tls, etc, pebble_calls):
        state, _ = tls
        secret = bind_secret("old-pw")
        relation = ldap_relation(secret)
        state = ctx.run(
            ctx.on.relation_changed(relation), with_(state, relations={relation}, secrets={secret})
        )
        rotated = dataclasses.replace(secret, latest_content={"password": "new-pw"})
        pebble_calls.restarts.clear()

        ctx.run(
            ctx.on.secret_changed(rotated),
            dataclasses.replace(state, secrets={*(state.secrets - {secret}), rotated}),
        )

        files = read_files(etc)
        assert properties(files[AUTHENTICATOR])["ldap.bind-password"] == "new-pw"
        assert properties(files["group-provider.properties"])["ldap.admin-password"] == "new-pw"
        assert pebble_calls.restarts  # Trino reads these files only as it starts

    def test_the_provider_going_away_turns_ldap_off(self, ctx, tls, etc):
        state, _ = tls
        secret = bind_secret()
        relation = ldap_relation(secret)
        state = ctx.run(
            ctx.on.relation_changed(relation), with_(state, relations={relation}, secrets={secret})
        )
        assert AUTHENTICATOR in read_files(etc)

        after = ctx.run(ctx.on.relation_broken(state.get_relation(relation.id)), state)

        files = read_files(etc)
        assert {AUTHENTICATOR, "group-provider.properties", "password.db"}.isdisjoint(files)
        assert "http-server.authentication.type" not in properties(files["config.properties"])
        assert after.unit_status == testing.ActiveStatus()

    def test_a_provider_without_ldaps_blocks_and_keeps_the_files(self, ctx, tls, etc):
        state, _ = tls
        before = read_files(etc)
        secret = bind_secret()
        relation = ldap_relation(secret, ldaps=False)

        after = ctx.run(
            ctx.on.relation_changed(relation), with_(state, relations={relation}, secrets={secret})
        )

        assert after.unit_status == testing.BlockedStatus(
            "ldap: glauth-k8s offers no ldaps:// URL and Trino sends passwords to it: "
            "enable LDAPS on glauth-k8s"
        )
        assert read_files(etc) == before

    def test_unreadable_provider_data_blocks(self, ctx, tls, etc):
        state, _ = tls
        secret = bind_secret()
        relation = dataclasses.replace(
            ldap_relation(secret),
            remote_app_data={**provider_data(secret), "auth_method": "kerberos"},
        )

        after = ctx.run(
            ctx.on.relation_changed(relation), with_(state, relations={relation}, secrets={secret})
        )

        assert after.unit_status == testing.BlockedStatus(
            "ldap: glauth-k8s sent data this charm cannot read; check its version"
        )
        assert AUTHENTICATOR not in read_files(etc)

    def test_a_provider_value_trino_would_rewrite_blocks(self, ctx, tls, etc):
        state, _ = tls
        secret = bind_secret("${ENV:PATH}")
        relation = ldap_relation(secret)

        after = ctx.run(
            ctx.on.relation_changed(relation), with_(state, relations={relation}, secrets={secret})
        )

        assert after.unit_status == testing.BlockedStatus(
            "ldap: glauth-k8s's data: the bind password has ${provider:key}, which Trino would "
            "replace with another secret; change it"
        )

    def test_a_bind_secret_not_granted_yet_waits(self, ctx, tls, etc):
        state, _ = tls
        relation = ldap_relation(bind_secret())  # the secret is not in the state

        after = ctx.run(ctx.on.relation_changed(relation), with_(state, relations={relation}))

        assert after.unit_status == testing.WaitingStatus(
            "waiting for glauth-k8s to grant its bind password secret (ldap)"
        )
        assert AUTHENTICATOR not in read_files(etc)

    def test_ldap_without_a_secure_path_blocks(self, ctx, container, etc, trino):
        secret = bind_secret()
        relation = ldap_relation(secret)

        after = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(
                leader=True, containers={container}, relations={relation}, secrets={secret}
            ),
        )

        assert after.unit_status.name == "blocked"
        assert after.unit_status.message.startswith("ldap: passwords need a secure path")
        assert read_files(etc) == {}

    def test_the_relation_and_ldap_url_together_block(self, ctx, tls, etc):
        state, _ = tls
        secret = bind_secret()
        relation = ldap_relation(secret)

        after = ctx.run(
            ctx.on.relation_changed(relation),
            with_(
                state,
                relations={relation},
                secrets={secret},
                config={"ldap-url": "ldaps://ldap.example:636"},
            ),
        )

        assert after.unit_status.message.startswith(
            "ldap-url and the ldap relation both name an LDAP server"
        )
        assert AUTHENTICATOR not in read_files(etc)


def options_secret(content: dict[str, str] | None = None) -> testing.Secret:
    return testing.Secret(
        tracked_content=content or {"bind-dn": "cn=admin,dc=example,dc=org", "bind-password": "pw"}
    )


def bind_account(secret: testing.Secret) -> dict[str, str]:
    """The options of an LDAP server outside Juju searched with a bind account."""
    return {
        "ldap-url": "ldaps://ldap.example",
        "ldap-user-base-dn": "dc=example,dc=org",
        "ldap-bind-secret-id": secret.id,
    }


class TestOptions:
    def test_a_bind_pattern_needs_no_bind_account(self, ctx, tls, etc):
        state, _ = tls
        pattern = "uid=${USER},ou=people,dc=example,dc=org"

        after = ctx.run(
            ctx.on.config_changed(),
            with_(
                state,
                config={"ldap-url": "ldaps://ldap.example:636", "ldap-user-bind-pattern": pattern},
            ),
        )

        files = read_files(etc)
        assert properties(files[AUTHENTICATOR]) == {
            "password-authenticator.name": "ldap",
            "ldap.url": "ldaps://ldap.example:636",
            "ldap.user-bind-pattern": pattern,
        }
        assert "group-provider.properties" not in files  # no account to read groups with
        assert after.unit_status == testing.ActiveStatus()

    def test_a_bind_account_searches_users_and_reads_group_entries(self, ctx, tls, etc):
        state, _ = tls
        secret = options_secret()

        ctx.run(
            ctx.on.config_changed(),
            with_(
                state,
                secrets={secret},
                config={
                    "ldap-url": "ldaps://ldap.example:636",
                    "ldap-user-base-dn": "ou=people,dc=example,dc=org",
                    "ldap-bind-secret-id": secret.id,
                    "ldap-group-base-dn": "ou=groups,dc=example,dc=org",
                },
            ),
        )

        files = read_files(etc)
        authenticator = properties(files[AUTHENTICATOR])
        assert authenticator["ldap.group-auth-pattern"] == "(uid=${USER})"
        assert authenticator["ldap.bind-password"] == "pw"
        groups = properties(files["group-provider.properties"])
        assert groups["ldap.use-group-filter"] == "true"
        assert groups["ldap.group-base-dn"] == "ou=groups,dc=example,dc=org"
        assert groups["ldap.group-search-member-attribute"] == "member"
        assert groups["ldap.user-search-filter"] == "(uid={0})"

    @pytest.mark.parametrize(
        ("config", "message"),
        [
            (
                {"ldap-url": "ldap://ldap.example:389", "ldap-user-bind-pattern": "uid=${USER}"},
                "ldap-url: 'ldap://ldap.example:389' is not an ldaps://<host>:<port> URL; Trino "
                "sends passwords to the LDAP server, so only LDAPS is accepted",
            ),
            (
                {"ldap-url": "ldaps://ldap.example"},
                "ldap-url: set ldap-user-bind-pattern (users bind as themselves), or "
                "ldap-user-base-dn and ldap-bind-secret-id (a bind account searches them)",
            ),
            (
                {"ldap-url": "ldaps://ldap.example", "ldap-user-bind-pattern": "uid=bob"},
                "ldap-user-bind-pattern: 'uid=bob' must contain ${USER} (the login), e.g. "
                "uid=${USER},ou=people,dc=example,dc=org",
            ),
            (
                {"ldap-url": "ldaps://x", "ldap-user-bind-pattern": "uid=${USER},o=${ENV:O}"},
                "ldap-user-bind-pattern: user bind pattern has ${provider:key}, which Trino "
                "would replace with another secret; change it",
            ),
            (
                {"ldap-ca-cert": CA},
                "ldap-ca-cert: unused without ldap-url or the ldap relation: set one or reset "
                "ldap-ca-cert",
            ),
            (
                {"ldap-user-bind-pattern": "uid=${USER}"},
                "ldap-user-bind-pattern: unused while ldap-url is empty: set "
                "ldap-url=ldaps://<host>:<port> or reset ldap-user-bind-pattern",
            ),
            (
                {
                    "ldap-url": "ldaps://x",
                    "ldap-user-bind-pattern": "uid=${USER}",
                    "ldap-ca-cert": "x",
                },
                "ldap-ca-cert: no PEM certificate found; give the CA that signed the LDAP "
                "server's certificate (-----BEGIN CERTIFICATE-----...)",
            ),
            (
                {"ldap-url": "ldaps://x", "ldap-bind-secret-id": "secret:cu9vq1bmp25c7aaaaaaa"},
                "ldap-bind-secret-id: secret secret:cu9vq1bmp25c7aaaaaaa does not exist or is not "
                "granted: run `juju grant-secret secret:cu9vq1bmp25c7aaaaaaa trino-k8s`",
            ),
        ],
    )
    def test_unusable_options_block_with_the_fix(self, ctx, tls, etc, config, message):
        state, _ = tls
        before = read_files(etc)

        after = ctx.run(ctx.on.config_changed(), with_(state, config=config))

        assert after.unit_status == testing.BlockedStatus(message)
        assert read_files(etc) == before

    def test_a_bind_secret_without_its_keys_blocks(self, ctx, tls, etc):
        state, _ = tls
        secret = options_secret({"password": "pw"})

        after = ctx.run(
            ctx.on.config_changed(),
            with_(
                state,
                secrets={secret},
                config=bind_account(secret),
            ),
        )

        assert after.unit_status == testing.BlockedStatus(
            f"ldap-bind-secret-id: secret {secret.id} needs the keys bind-dn and bind-password: "
            f"`juju update-secret {secret.id} bind-dn=<dn> bind-password=<password>`"
        )

    def test_a_bind_password_trino_would_rewrite_blocks(self, ctx, tls, etc):
        state, _ = tls
        secret = options_secret({"bind-dn": "cn=admin", "bind-password": "a${ENV:HOME}b"})

        after = ctx.run(
            ctx.on.config_changed(),
            with_(
                state,
                secrets={secret},
                config=bind_account(secret),
            ),
        )

        assert after.unit_status == testing.BlockedStatus(
            "ldap-bind-secret-id: the bind password has ${provider:key}, which Trino would "
            "replace with another secret; change it"
        )
        assert AUTHENTICATOR not in read_files(etc)

    def test_the_bind_secret_cannot_feed_a_catalog(self, ctx, tls):
        state, _ = tls
        secret = options_secret()
        catalogs = {
            "leak": {
                "connector": "postgresql",
                "secret": secret.id,
                "properties": {"connection-url": "jdbc:postgresql://evil:5432/x"},
                "secret-properties": {"connection-password": "bind-password"},
            }
        }

        after = ctx.run(
            ctx.on.config_changed(),
            with_(
                state,
                secrets={secret},
                config={**bind_account(secret), "catalog-config": yaml.safe_dump(catalogs)},
            ),
        )

        assert after.unit_status.name == "blocked"
        assert f"secret {secret.id} is the ldap-bind-secret-id secret" in after.unit_status.message


def group_secret(groups: dict | None = None) -> testing.Secret:
    return testing.Secret(
        tracked_content={"groups": yaml.safe_dump(groups or {"analysts": ["alice"]})}
    )


def user_secret() -> testing.Secret:
    return testing.Secret(tracked_content={"users": yaml.safe_dump({"alice": "a", "bob": "b"})})


class TestGroups:
    def test_a_group_secret_becomes_trino_s_group_file(self, ctx, tls, etc):
        state, _ = tls
        users, groups = user_secret(), group_secret({"analysts": ["alice", "bob"], "ops": []})

        after = ctx.run(
            ctx.on.config_changed(),
            with_(
                state,
                secrets={users, groups},
                config={"user-secret-id": users.id, "group-secret-id": groups.id},
            ),
        )

        files = read_files(etc)
        assert properties(files["group-provider.properties"]) == {
            "group-provider.name": "file",
            "file.group-file": "/etc/trino/groups.txt",
            "file.refresh-period": "5s",
        }
        assert files["groups.txt"] == "analysts:alice,bob\nops:\n"
        assert after.unit_status == testing.ActiveStatus()

    def test_group_changes_need_no_restart(self, ctx, tls, etc, pebble_calls):
        state, _ = tls
        users, groups = user_secret(), group_secret()
        state = ctx.run(
            ctx.on.config_changed(),
            with_(
                state,
                secrets={users, groups},
                config={"user-secret-id": users.id, "group-secret-id": groups.id},
            ),
        )
        pebble_calls.restarts.clear()
        rotated = dataclasses.replace(
            groups, latest_content={"groups": yaml.safe_dump({"analysts": ["bob"]})}
        )

        ctx.run(
            ctx.on.secret_changed(rotated),
            dataclasses.replace(state, secrets={*(state.secrets - {groups}), rotated}),
        )

        assert read_files(etc)["groups.txt"] == "analysts:bob\n"
        assert pebble_calls.restarts == []

    def test_rules_may_grant_by_group(self, ctx, tls, etc):
        state, _ = tls
        users, groups = user_secret(), group_secret()
        rules = {"catalogs": [{"group": "analysts", "catalog": ".*", "allow": "all"}]}

        after = ctx.run(
            ctx.on.config_changed(),
            with_(
                state,
                secrets={users, groups},
                config={
                    "user-secret-id": users.id,
                    "group-secret-id": groups.id,
                    "access-control-rules": json.dumps(rules),
                },
            ),
        )

        assert {"group": "analysts", "catalog": ".*", "allow": "all"} in json.loads(
            read_files(etc)["rules.json"]
        )["catalogs"]
        assert after.unit_status == testing.ActiveStatus()

    def test_groups_without_authentication_are_refused(self, ctx, container, etc, trino):
        groups = group_secret()

        after = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                secrets={groups},
                config={"group-secret-id": groups.id},
            ),
        )

        assert after.unit_status == testing.BlockedStatus(
            "group-secret-id: groups need authentication, or any client may claim any user: "
            "set user-secret-id or relate ldap"
        )
        assert read_files(etc) == {}

    def test_the_group_secret_wins_over_ldap_groups(self, ctx, tls, etc):
        state, _ = tls
        secret, groups = bind_secret(), group_secret()
        relation = ldap_relation(secret)

        ctx.run(
            ctx.on.relation_changed(relation),
            with_(
                state,
                relations={relation},
                secrets={secret, groups},
                config={"group-secret-id": groups.id},
            ),
        )

        files = read_files(etc)
        assert properties(files["group-provider.properties"])["group-provider.name"] == "file"
        assert AUTHENTICATOR in files

    @pytest.mark.parametrize(
        ("groups", "why"),
        [
            ("- a list", "must map each group to its users, e.g. `analysts: [alice, bob]`"),
            ("analysts: alice", "group 'analysts' in secret {id} must list user names"),
            ("'bad group': [alice]", "group 'bad group' in secret {id} is not a valid name"),
        ],
    )
    def test_unusable_groups_block(self, ctx, tls, etc, groups, why):
        state, _ = tls
        users = user_secret()
        secret = testing.Secret(tracked_content={"groups": groups})

        after = ctx.run(
            ctx.on.config_changed(),
            with_(
                state,
                secrets={users, secret},
                config={"user-secret-id": users.id, "group-secret-id": secret.id},
            ),
        )

        assert after.unit_status.name == "blocked"
        assert after.unit_status.message.startswith("group-secret-id: ")
        assert why.format(id=secret.id) in after.unit_status.message
        assert "groups.txt" not in read_files(etc)


class TestWorkers:
    def test_ldap_alone_still_shares_password_authentication_with_workers(
        self, ctx, tls, etc, peers
    ):
        state, _ = tls
        secret = bind_secret()
        relation = ldap_relation(secret)
        workers = testing.Relation("trino-coordinator", remote_app_name="trino-worker")
        state = ctx.run(
            ctx.on.relation_changed(relation),
            with_(state, relations={relation, workers, peers}, secrets={secret}),
        )

        # Once Trino serves on its LDAP files, the workers are told.
        after = ctx.run(ctx.on.relation_joined(workers, remote_unit=0), state)

        data = after.get_relation(workers.id).local_app_data
        assert json.loads(data["settings"])["authentication"] == "password"
        cluster = next(s for s in after.secrets if s.label == "trino-cluster")
        shared = cluster.latest_content or cluster.tracked_content
        # The charm's own user drains workers; the bind account stays on the coordinator.
        assert "trino-k8s-charm:" in shared["password-db"]
        assert "b1nd-pw" not in json.dumps(shared)

    def test_ldap_options_on_a_worker_block(self, ctx, container, trino):
        after = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                containers={container},
                config={"charm-function": "worker", "ldap-url": "ldaps://ldap.example"},
            ),
        )

        assert after.unit_status.message.startswith("ldap-url is unused on a worker")

    def test_an_ldap_relation_on_a_worker_blocks(self, ctx, container, trino):
        after = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                containers={container},
                relations={ldap_relation()},
                config={"charm-function": "worker"},
            ),
        )

        assert after.unit_status == testing.BlockedStatus(
            "ldap is unused on a worker (LDAP logins come from the coordinator): "
            "`juju remove-relation trino-k8s:ldap glauth-k8s`"
        )

    @pytest.mark.parametrize("option", ["ldap-user-base-dn", "ldap-ca-cert", "group-secret-id"])
    def test_every_ldap_and_group_option_on_a_worker_blocks(self, ctx, container, trino, option):
        after = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                containers={container}, config={"charm-function": "worker", option: "x"}
            ),
        )

        assert after.unit_status.message.startswith(f"{option} is unused on a worker")


class TestComposition:
    @pytest.mark.parametrize(
        ("password_file", "ldap", "types", "chain"),
        [
            (False, False, (), ()),
            (True, False, ("PASSWORD",), ("file",)),
            (False, True, ("PASSWORD",), ("ldap",)),
            (True, True, ("PASSWORD",), ("file", "ldap")),
        ],
    )
    def test_authenticators_in_the_order_trino_tries_them(self, password_file, ldap, types, chain):
        result = security.authentication(password_file=password_file, ldap=ldap)

        assert result.types == types
        assert result.password_authenticators == chain
