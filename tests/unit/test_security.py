"""The pure access decisions: users, password.db, rules, secure paths, the files they give."""

from __future__ import annotations

import json

import bcrypt
import pytest

from core import security
from core.config import CharmConfig
from core.plan import CHARM_USER, Cluster, NodeInputs, Security, plan_node

SECRET_ID = "secret:users"


def users_of(text: str) -> dict[str, str]:
    return security.parse_users({"users": text}, SECRET_ID)


class TestUsers:
    def test_a_yaml_map_of_users(self):
        assert users_of("alice: s3cret\nbob: 'hunter 2'\n") == {
            "alice": "s3cret",
            "bob": "hunter 2",
        }

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            ("secret secret:users does not exist or is not granted", "not granted"),
            ({"user": "alice: x"}, "has no 'users' key"),
            ({"users": "alice: [unclosed"}, "is not YAML"),
            ({"users": "- alice\n- bob"}, "must map each user to its password"),
            ({"users": ""}, "must map each user to its password"),
            ({"users": "alice: 1234"}, "needs a non-empty password (a quoted string)"),
            ({"users": "alice: ''"}, "needs a non-empty password"),
            ({"users": "'al:ice': x"}, "is not a valid name"),
            ({"users": f"alice: {'x' * 73}"}, "longer than 72 bytes"),
        ],
    )
    def test_bad_users_are_refused_by_option_name(self, content, expected):
        with pytest.raises(security.AccessInputError) as error:
            security.parse_users(content, SECRET_ID)

        assert str(error.value).startswith("user-secret-id: ")
        assert expected in str(error.value)

    def test_a_reserved_user_is_refused(self):
        problem = security.reserved_user_problem({CHARM_USER: "x"}, {CHARM_USER})

        assert problem.startswith(f"user-secret-id: user '{CHARM_USER}' is reserved")
        assert security.reserved_user_problem({"alice": "x"}, {CHARM_USER}) == ""


class TestPasswordDb:
    def test_every_user_verifies_with_bcrypt(self):
        users = {"alice": "s3cret", "bob": "hunter2", "émile": "pâssword"}

        db = security.password_db(users)

        lines = db.splitlines()
        assert [line.split(":", 1)[0] for line in lines] == sorted(users)
        for line in lines:
            user, hashed = line.split(":", 1)
            assert hashed.startswith("$2b$10$")  # Trino wants bcrypt with cost >= 8
            assert bcrypt.checkpw(users[user].encode(), hashed.encode())
            assert not bcrypt.checkpw(b"wrong", hashed.encode())

    def test_unchanged_users_keep_their_line(self):
        first = security.password_db({"alice": "a", "bob": "b"})

        again = security.password_db({"alice": "a", "bob": "b"}, first)
        rotated = security.password_db({"alice": "a", "bob": "new"}, first)

        assert again == first
        assert rotated.splitlines()[0] == first.splitlines()[0]
        assert rotated.splitlines()[1] != first.splitlines()[1]
        assert bcrypt.checkpw(b"new", rotated.splitlines()[1].split(":", 1)[1].encode())

    def test_a_garbled_line_is_hashed_again(self):
        db = security.password_db({"alice": "a"}, "alice:not-a-hash\n")

        assert bcrypt.checkpw(b"a", db.strip().split(":", 1)[1].encode())


class TestRules:
    def test_empty_option_means_no_operator_rules(self):
        assert security.operator_rules("  ") == {}

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("{not json", "not valid JSON"),
            ('["catalogs"]', "must be a JSON object of rule lists"),
            ('{"catalogs": {"allow": "all"}}', "must be a JSON object of rule lists"),
            ('{"catalogs": ["all"]}', "must be a JSON object of rule lists"),
        ],
    )
    def test_bad_rules_are_refused_by_option_name(self, text, expected):
        with pytest.raises(security.AccessInputError) as error:
            security.operator_rules(text)

        assert str(error.value).startswith("access-control-rules: ")
        assert expected in str(error.value)

    def test_charm_rules_come_first_in_every_section(self):
        charm = {
            "system_information": [{"user": CHARM_USER, "allow": ["read", "write"]}],
            "catalogs": [{"user": CHARM_USER, "allow": "none"}],
        }
        operator = {
            "system_information": [{"allow": "none"}],
            "catalogs": [{"user": "alice", "catalog": "sales", "allow": "all"}],
            "tables": [{"privileges": ["SELECT"]}],
        }

        merged = security.merge_rules(charm, operator)

        assert merged == {
            "catalogs": [
                {"user": CHARM_USER, "allow": "none"},
                {"user": "alice", "catalog": "sales", "allow": "all"},
            ],
            "system_information": [
                {"user": CHARM_USER, "allow": ["read", "write"]},
                {"allow": "none"},
            ],
            "tables": [{"privileges": ["SELECT"]}],
        }

    def test_a_section_only_the_charm_has_keeps_trinos_default_for_others(self):
        charm = {"catalogs": [{"user": CHARM_USER, "allow": "none"}]}

        merged = security.merge_rules(charm, {})

        assert merged["catalogs"] == [{"user": CHARM_USER, "allow": "none"}, {"allow": "all"}]


class TestSecurePath:
    @pytest.mark.parametrize(
        ("https", "ingress_tls", "secure"),
        [(False, False, False), (True, False, True), (False, True, True), (True, True, True)],
    )
    def test_https_or_an_https_ingress(self, https, ingress_tls, secure):
        assert security.SecurePath(https, ingress_tls).secure is secure


def node(sec: Security) -> dict[str, str]:
    inputs = NodeInputs(
        CharmConfig(),
        "lake",
        "trino/0",
        cluster=Cluster("lake", "http://x:8080", "shared"),
        security=sec,
    )
    return {path: file.content for path, file in plan_node(inputs).files.items()}


def config_of(files: dict[str, str]) -> dict[str, str]:
    lines = files["/etc/trino/config.properties"].splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


class TestSecurityFiles:
    def test_no_security_writes_no_authentication(self):
        files = node(Security())

        config = config_of(files)
        assert not {k for k in config if k.startswith(("http-server.https", "http-server.auth"))}
        # Without authentication Prometheus scrapes as a plain user: no fixed management user
        # (it would turn the charm's drain into a refused impersonation).
        assert "management.user" not in config
        assert "/etc/trino/password.db" not in files
        assert "/etc/trino/keystore.pem" not in files

    def test_password_and_https(self):
        db = security.password_db({"alice": "a"})
        inputs = NodeInputs(
            CharmConfig(),
            "lake",
            "trino/0",
            cluster=Cluster("lake", "http://x:8080", "shared"),
            security=Security(password_db=db, keystore="PEM"),
        )

        plan = plan_node(inputs)

        config = config_of({p: f.content for p, f in plan.files.items()})
        assert config["http-server.authentication.type"] == "PASSWORD"
        assert config["http-server.https.enabled"] == "true"
        assert config["http-server.https.port"] == "8443"
        assert config["http-server.https.keystore.path"] == "/etc/trino/keystore.pem"
        assert config["internal-communication.shared-secret"] == "shared"
        assert "http-server.authentication.allow-insecure-over-http" not in config
        # Prometheus cannot be handed a password: plain-HTTP management reads (/metrics) run
        # as the read-only metrics user, and the rules let it read nothing but that.
        assert config["management.user"] == "trino-metrics"
        assert "management.user.https-enabled" not in config
        rules = json.loads(plan.files["/etc/trino/rules.json"].content)
        metrics_rules = [r for r in rules["system_information"] if r["user"] == "trino-metrics"]
        assert metrics_rules == [{"user": "trino-metrics", "allow": ["read"]}]
        assert plan.files["/etc/trino/password.db"].content == db
        assert plan.files["/etc/trino/password.db"].mode == 0o600
        assert plan.files["/etc/trino/keystore.pem"].mode == 0o600
        authenticator = plan.files["/etc/trino/password-authenticator.properties"].content
        assert "password-authenticator.name=file" in authenticator
        assert "file.password-file=/etc/trino/password.db" in authenticator
        assert "file.refresh-period=5s" in authenticator

    def test_operator_rules_follow_the_charms(self):
        files = node(Security(operator_rules={"catalogs": [{"user": "bob", "allow": "none"}]}))

        rules = json.loads(files["/etc/trino/rules.json"])
        assert rules["catalogs"] == [
            {"user": f"{CHARM_USER}|trino-metrics", "allow": "none"},
            {"user": "bob", "allow": "none"},
        ]
