"""Issue 12, first half: what a hostile peer, a careless operator and the peers' own code found.

Each test feeds the charm what a provider, a coordinator or an operator really can send,
and asserts that no hook raises, that the unit says what is wrong, and that nothing
unsafe reaches Trino's files.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re

import pytest
import yaml
from conftest import properties, read_files
from ops import testing
from providers import (
    catalog_files,
    database_relation,
    login_secret,
    s3_relation,
    tls_secret,
)
from test_access import UNIT_HOST, user_secret

from core import jvm
from core.config import CharmConfig, ConfigError
from core.plan import Cluster, NodeInputs, Security, plan_node

DISCOVERY = "http://trino-0.trino-endpoints.lake.svc.cluster.local:8080"
BAD_PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


def client() -> testing.Relation:
    return testing.Relation(
        "trino-catalog", remote_app_name="superset", remote_app_data={"app_name": "superset"}
    )


def ingress(url: str) -> testing.Relation:
    return testing.Relation(
        "ingress", remote_app_name="traefik", remote_app_data={"ingress": json.dumps({"url": url})}
    )


def coordinator(
    catalogs: object = None,
    settings: object = None,
    secret_content: dict[str, str] | None = None,
    **data: str,
) -> tuple[testing.Relation, testing.Secret]:
    """A coordinator's offer as a worker sees it; any field may be what a hostile peer sends."""
    secret = testing.Secret(
        secret_content or {"shared-secret": "c2hhcmVk", "catalog-credentials": "{}"}
    )
    databag = {
        "discovery-uri": json.dumps(DISCOVERY),
        "environment": json.dumps("lake"),
        "catalogs": json.dumps({} if catalogs is None else catalogs),
        "settings": json.dumps({} if settings is None else settings),
        "secret-id": json.dumps(secret.id),
        **data,
    }
    relation = testing.Relation("trino-worker", remote_app_name="trino", remote_app_data=databag)
    return relation, secret


def worker(relation: testing.Relation, secret: testing.Secret, container) -> testing.State:
    return testing.State(
        containers={container},
        relations={relation, testing.PeerRelation("trino-peers")},
        secrets={secret},
        config={"charm-function": "worker"},
    )


def files_outside_the_charms_folders(etc: pathlib.Path) -> dict[str, str]:
    return {
        name: text
        for name, text in read_files(etc).items()
        if not name.startswith(("catalog/", "certs/"))
    }


# Hook errors: the unit goes into error and every later hook fails.


class TestCertificatesThatDoNotParse:
    @pytest.fixture
    def https(self, tls, pebble_calls):
        """A leader serving HTTPS with a signed certificate (test_access's `tls`)."""
        pebble_calls.restarts.clear()
        state, signed = tls
        return state, state.get_relation(signed.id)

    @pytest.mark.parametrize("field", ["certificate", "ca", "certificate_signing_request"])
    def test_a_certificate_that_does_not_parse_blocks_and_keeps_https(
        self, ctx, etc, https, pebble_calls, field
    ):
        state, relation = https
        before = read_files(etc)
        entries = json.loads(relation.remote_app_data["certificates"])
        entries[0][field] = BAD_PEM
        broken = dataclasses.replace(
            relation, remote_app_data={"certificates": json.dumps(entries)}
        )

        after = ctx.run(
            ctx.on.relation_changed(broken), dataclasses.replace(state, relations={broken})
        )

        assert after.unit_status == testing.BlockedStatus(
            "certificates: self-signed-certificates sent a certificate that does not parse; "
            "HTTPS keeps the current one. Have it issue a new one or `juju remove-relation "
            "trino-k8s:certificates self-signed-certificates`"
        )
        assert read_files(etc) == before
        assert pebble_calls.restarts == []


class TestIngressUrls:
    @pytest.mark.parametrize(
        "url", ["https://h:99999/x", "https://h:abc/", "https://[::1/", "https://", "ftp://h/"]
    )
    def test_a_url_with_a_bad_port_or_host_is_no_url(self, ctx, container, trino, url):
        related = client()

        state = ctx.run(
            ctx.on.relation_changed(related),
            testing.State(leader=True, containers={container}, relations={ingress(url), related}),
        )

        data = state.get_relation(related.id).local_app_data
        assert data["trino_url"] == f"{UNIT_HOST.format(model=state.model.name)}:8080"

    def test_an_https_url_without_a_host_is_no_secure_path(self, ctx, container, etc, trino):
        users = user_secret()

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                relations={ingress("https://"), client()},
                secrets={users},
                config={"user-secret-id": users.id},
            ),
        )

        assert state.unit_status.message.startswith("user-secret-id: passwords need a secure path")
        assert read_files(etc) == {}

    def test_an_ipv6_ingress_host_keeps_its_brackets(self, ctx, container, trino):
        related = client()

        state = ctx.run(
            ctx.on.relation_changed(related),
            testing.State(
                leader=True,
                containers={container},
                relations={ingress("https://[fd00::1]:8443/trino"), related},
            ),
        )

        assert state.get_relation(related.id).local_app_data["trino_url"] == "[fd00::1]:8443"


class TestDatabaseProviders:
    @pytest.fixture(autouse=True)
    def no_metastore_connection(self, monkeypatch):
        import metastore  # noqa: PLC0415

        def refuse(*args, **kwargs):
            raise AssertionError("the charm connected to a metastore it should have refused")

        monkeypatch.setattr(metastore, "create_schema", refuse)

    @pytest.mark.parametrize("endpoint", ["mysql", "metastore"])
    def test_endpoints_with_non_ascii_digits_block_by_relation(
        self, ctx, container, peers, etc, trino, endpoint
    ):
        user = login_secret()
        relation = database_relation(endpoint, "db", user, endpoints="pg:²")
        lakehouse = {s3_relation(0)} if endpoint == "metastore" else set()

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(
                leader=True,
                containers={container},
                relations={relation, peers, *lakehouse},
                secrets={user},
            ),
        )

        assert state.unit_status == testing.BlockedStatus(
            f"{endpoint} relation with db: its endpoints 'pg:²' are not host:port; "
            "fix the provider or `juju remove-relation trino-k8s db`"
        )
        assert catalog_files(etc) == {}

    @pytest.mark.parametrize(
        ("endpoint", "endpoints"),
        [
            ("postgresql", "db:5432/x?sslmode=disable&socketFactory=evil"),
            ("postgresql", "db:5432,db2:5432/other"),
            ("mysql", "db?allowLoadLocalInfile=true:3306"),
            ("mysql", "db:3306/?allowLoadLocalInfile=true"),
            ("postgresql", "db:70000"),
            ("postgresql", "db:5432\nssl=false"),
        ],
    )
    def test_endpoints_with_jdbc_parameters_are_refused(
        self, ctx, container, peers, etc, trino, endpoint, endpoints
    ):
        user = login_secret()
        relation = database_relation(endpoint, "db", user, endpoints=endpoints)

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(
                leader=True, containers={container}, relations={relation, peers}, secrets={user}
            ),
        )

        assert state.unit_status.name == "blocked"
        assert state.unit_status.message.startswith(f"{endpoint} relation with db: its endpoints")
        assert catalog_files(etc) == {}

    def test_hosts_and_ports_make_the_url(self, ctx, container, peers, etc, trino):
        user = login_secret()
        relation = database_relation(
            "postgresql", "db", user, endpoints="pg-0.db:5432, 10.1.2.3:5433,[fd00::7]:5432"
        )

        ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(
                leader=True, containers={container}, relations={relation, peers}, secrets={user}
            ),
        )

        assert catalog_files(etc)["db"]["connection-url"] == (
            "jdbc:postgresql://pg-0.db:5432,10.1.2.3:5433,[fd00::7]:5432/db"
        )

    def test_a_metastore_ca_that_does_not_parse_blocks_by_name(
        self, ctx, container, peers, etc, trino, monkeypatch
    ):
        monkeypatch.undo()  # the real bootstrap: it must refuse the CA before connecting
        user = login_secret()
        tls = tls_secret(ca=BAD_PEM.strip(), enabled="true")
        relation = database_relation("metastore", "postgresql-k8s", user, database="m", tls=tls)

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(
                leader=True,
                containers={container},
                relations={relation, peers, s3_relation(0)},
                secrets={user, tls},
            ),
        )

        assert state.unit_status == testing.BlockedStatus(
            "lakehouse catalog 'lakehouse': the TLS CA that postgresql-k8s sent for database "
            "'m' is not a PEM certificate; check the metastore relation with postgresql-k8s "
            "(the charm retries on every hook)"
        )
        assert catalog_files(etc) == {}


class TestCatalogNames:
    def test_a_name_too_long_for_a_file_name_is_refused(self, ctx, container, etc, trino):
        name = "a" * 250

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                config={"catalog-config": yaml.safe_dump({name: {"connector": "tpch"}})},
            ),
        )

        assert state.unit_status.name == "blocked"
        assert state.unit_status.message.endswith("names are at most 128 characters")
        assert catalog_files(etc) == {}

    @pytest.mark.parametrize("key", ["tpch.splits-per-node\n", "a\nb"])
    def test_a_property_name_with_a_line_break_is_refused(self, ctx, container, etc, trino, key):
        config = {"x": {"connector": "tpch", "properties": {key: "4"}}}

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                config={"catalog-config": yaml.safe_dump(config)},
            ),
        )

        assert state.unit_status.name == "blocked"
        assert "are not valid Trino property names" in state.unit_status.message
        assert catalog_files(etc) == {}


class TestMalformedCoordinatorData:
    UNREADABLE = "trino shares data this charm cannot read: run the same charm revision on both"

    @pytest.mark.parametrize(
        ("catalogs", "settings"),
        [
            ({}, "not an object"),
            ({}, [1]),
            ({}, {"access-control-rules": {"catalogs": []}}),
            ({}, {"authentication": 1}),
            ({"x": {"properties": {"connector.name": "tpch"}, "files": {"/etc/trino/a": 5}}}, {}),
            ({"x": {"properties": {"connector.name": 7}}}, {}),
            ({"x": {"properties": "connector.name=tpch"}}, {}),
            ({"x": "tpch"}, {}),
            ([], {}),
        ],
    )
    def test_data_of_the_wrong_shape_waits_and_writes_nothing(
        self, worker_ctx, container, etc, trino, catalogs, settings
    ):
        relation, secret = coordinator(catalogs, settings)

        state = worker_ctx.run(worker_ctx.on.config_changed(), worker(relation, secret, container))

        assert state.unit_status.name == "waiting"
        assert state.unit_status.message.startswith(self.UNREADABLE)
        assert read_files(etc) == {}

    @pytest.mark.parametrize("secret_id", [5, ["secret:x"], {"id": "x"}])
    def test_a_secret_id_that_is_not_text_waits(
        self, worker_ctx, container, etc, trino, secret_id
    ):
        relation, secret = coordinator(**{"secret-id": json.dumps(secret_id)})

        state = worker_ctx.run(worker_ctx.on.config_changed(), worker(relation, secret, container))

        assert state.unit_status.message.startswith(self.UNREADABLE)
        assert read_files(etc) == {}

    def test_a_catalog_without_connector_name_is_refused(self, worker_ctx, container, etc, trino):
        relation, secret = coordinator({"x": {"properties": {}, "files": {}}})

        state = worker_ctx.run(worker_ctx.on.config_changed(), worker(relation, secret, container))

        assert state.unit_status.name == "blocked"
        assert state.unit_status.message.startswith("catalog 'x' (from trino): connector ''")
        assert catalog_files(etc) == {}

    def test_credentials_for_an_unknown_catalog_are_unreadable(
        self, worker_ctx, container, etc, trino
    ):
        relation, secret = coordinator(
            {},
            secret_content={"shared-secret": "c2hhcmVk", "catalog-credentials": '{"x": "pw"}'},
        )

        state = worker_ctx.run(worker_ctx.on.config_changed(), worker(relation, secret, container))

        assert state.unit_status.message.startswith(self.UNREADABLE)
        assert read_files(etc) == {}


@pytest.fixture
def worker_ctx() -> testing.Context:
    import charm  # noqa: PLC0415

    return testing.Context(charm.TrinoK8sCharm, app_name="trino-worker", unit_id=1)


# Security.


class TestJvmOptions:
    @pytest.mark.parametrize(
        "flag",
        [
            "-Dhttp-server.authentication.allow-insecure-over-http=true",
            "-Dinternal-communication.shared-secret=abc",
            "-Dhttp-server.process-forwarded=true",
            "-Dhttp-server.authentication.type=",
            "-Dsecurity.config-file=/tmp/rules.json",
            "-Dfile.password-file=/tmp/password.db",
            "-Dcatalog.config-dir=/tmp/catalogs",
            "-Dplugin.dir=/tmp/plugins",
            "-Dnode.environment=other",
            "-Dconfig=/tmp/config.properties",
            "-DsecretsConfig=/tmp/secrets.toml",
            "-Dweb-ui.authentication.type=fixed",
            "-javaagent:/tmp/agent.jar",
            "-agentpath:/tmp/agent.so",
            "-agentlib:jdwp=transport=dt_socket,server=y,address=*:5005",
            "-XX:OnOutOfMemoryError=/tmp/x.sh",
            "-XX:OnError=/tmp/x.sh",
            "-Xrunjdwp:transport=dt_socket,server=y,address=5005",
            "-XX:VMOptionsFile=/tmp/more-flags",
            "-XX:Flags=/tmp/.hotspotrc",
            "-Xbootclasspath/a:/tmp/x.jar",
            "-Djava.system.class.loader=Evil",
            "--class-path=/tmp/x.jar",
            "-cp",
        ],
    )
    def test_owned_properties_and_code_running_flags_are_refused(self, flag):
        with pytest.raises(ConfigError) as raised:
            CharmConfig(additional_jvm_options=f"-XX:+UseStringDeduplication {flag}")

        [problem] = raised.value.problems
        assert problem.option == "additional-jvm-options"
        assert flag in problem.message

    @pytest.mark.parametrize(
        "flag",
        [
            "-Dfile.encoding=UTF-8",
            "-Duser.timezone=UTC",
            "-XX:+UseStringDeduplication",
            "-Djdk.nio.maxCachedBufferSize=1000000",
            "-Dquery.max-run-time-tuning-is-not-a-property=1",
            "-Xss4m",
        ],
    )
    def test_jvm_settings_are_still_accepted(self, flag):
        assert flag in CharmConfig(additional_jvm_options=flag).jvm_flags

    def test_every_property_the_charm_writes_is_owned(self):
        inputs = NodeInputs(
            CharmConfig(query_max_memory="20GB", query_max_memory_per_node="1GB"),
            "lake",
            "trino/0",
            cluster=Cluster("lake", DISCOVERY, "shared"),
            tracing_endpoint="tempo:4317",
            security=Security(password_db="a:b\n", keystore="PEM", process_forwarded=True),
        )
        plan = plan_node(inputs)
        names = {
            line.split("=", 1)[0]
            for path, file in plan.files.items()
            if path.endswith(".properties") and "/catalog/" not in path
            for line in file.content.splitlines()
            if line and not line.startswith("#") and not path.endswith("log.properties")
        }

        assert len(names) > 20
        assert [name for name in sorted(names) if not jvm.flag_problem(f"-D{name}=x")] == []

    def test_a_refused_flag_blocks_and_keeps_jvm_config(self, ctx, container, etc, trino):
        state = ctx.run(
            ctx.on.config_changed(), testing.State(leader=True, containers={container})
        )
        before = read_files(etc)

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(state, config={"additional-jvm-options": "-javaagent:/a.jar"}),
        )

        assert after.unit_status.name == "blocked"
        assert after.unit_status.message.startswith(
            "additional-jvm-options: '-javaagent:/a.jar' runs code"
        )
        assert read_files(etc) == before


class TestCatalogSecrets:
    """A catalog may use only a secret the operator made for it, never one of the charm's."""

    @staticmethod
    def leak(secret_id: str, key: str) -> dict[str, str]:
        catalog = {
            "connector": "postgresql",
            "properties": {"connection-url": "jdbc:postgresql://evil.example:5432/x"},
            "secret": secret_id,
            "secret-properties": {"connection-password": key},
        }
        return {"catalog-config": yaml.safe_dump({"leak": catalog})}

    @pytest.mark.parametrize(
        ("label", "key", "owner"),
        [
            ("trino-cluster", "shared-secret", "app"),
            ("trino-charm-user", "password", "app"),
            ("trino-catalog-7", "password", "app"),
            ("tls-private-key", "private-key", "unit"),
        ],
    )
    def test_the_charms_own_secrets_are_refused(
        self, ctx, container, peers, etc, trino, label, key, owner
    ):
        own = testing.Secret({key: "the-charms-own-value"}, label=label, owner=owner)

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                relations={peers},
                secrets={own},
                config=self.leak(own.id, key),
            ),
        )

        assert state.unit_status == testing.BlockedStatus(
            f"catalog 'leak' (config): secret {own.id} belongs to this charm, not to "
            "catalogs; use a secret you made for the catalog (`juju add-secret`, then "
            "`juju grant-secret <secret> trino-k8s`)"
        )
        assert "leak" not in catalog_files(etc)

    @pytest.mark.parametrize("endpoint", ["postgresql", "metastore"])
    def test_a_providers_secret_is_refused_by_id(
        self, ctx, container, peers, etc, trino, endpoint, monkeypatch
    ):
        import metastore  # noqa: PLC0415

        monkeypatch.setattr(metastore, "create_schema", lambda *args, **kwargs: None)
        login = login_secret()
        relation = database_relation(endpoint, "db", login)
        config = self.leak(login.id.replace("secret:", ""), "password")

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                relations={peers, relation},
                secrets={login},
                config=config,
            ),
        )

        assert state.unit_status.message.startswith(
            f"catalog 'leak' (config): secret {login.id.replace('secret:', '')} was shared "
            f"by db on the {endpoint} relation, not for catalogs"
        )
        assert "leak" not in catalog_files(etc)

    def test_the_user_secret_is_refused(self, ctx, container, peers, etc, trino):
        users = user_secret()
        config = {**self.leak(users.id, "users"), "user-secret-id": users.id}

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                relations={peers, ingress("https://lake.example/trino")},
                secrets={users},
                config=config,
            ),
        )

        assert state.unit_status.message.startswith(
            f"catalog 'leak' (config): secret {users.id} is the user-secret-id secret, "
            "not for catalogs"
        )
        assert "leak" not in catalog_files(etc)

    def test_add_catalog_refuses_them_too(self, ctx, container, peers, trino):
        own = testing.Secret({"password": "x"}, label="trino-charm-user", owner="app")
        params = {
            "name": "leak",
            "connector": "postgresql",
            "properties": {"connection-url": "jdbc:postgresql://evil:5432/x"},
            "secret": own.id,
            "secret-properties": {"connection-password": "password"},
        }

        with pytest.raises(testing.ActionFailed, match="belongs to this charm"):
            ctx.run(
                ctx.on.action("add-catalog", params=params),
                testing.State(
                    leader=True, containers={container}, relations={peers}, secrets={own}
                ),
            )

    def test_a_relation_catalog_still_uses_its_own_login(self, ctx, container, peers, etc, trino):
        login = login_secret()
        relation = database_relation("postgresql", "db", login)

        ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(
                leader=True,
                containers={container},
                relations={peers, relation},
                secrets={login},
            ),
        )

        assert catalog_files(etc)["db"]["connection-password"] == login.tracked_content["password"]


class TestWorkerTrustsNothing:
    @pytest.mark.parametrize(
        ("catalogs", "problem"),
        [
            (
                {"../../x": {"properties": {"connector.name": "tpch"}}},
                "catalog '../../x' (from trino): name '../../x' is not allowed",
            ),
            (
                {
                    "x": {
                        "properties": {"connector.name": "tpch"},
                        "files": {"/usr/lib/trino/plugin/tpch/evil.jar": "code"},
                    }
                },
                "catalog 'x' (from trino): files ['/usr/lib/trino/plugin/tpch/evil.jar'] are "
                "not in /etc/trino/certs",
            ),
            (
                {
                    "x": {
                        "properties": {"connector.name": "tpch"},
                        "files": {"/etc/trino/config.properties": "coordinator=true\n"},
                    }
                },
                "catalog 'x' (from trino): files ['/etc/trino/config.properties'] are not in",
            ),
            (
                {"x": {"properties": {"connector.name": "tpch", "a\n": "b"}}},
                "catalog 'x' (from trino): property names ['a\\n'] are not valid",
            ),
            (
                {"x\n": {"properties": {"connector.name": "tpch"}}},
                "catalog 'x\\n' (from trino): name 'x\\n' is not allowed",
            ),
            (
                {"x": {"properties": {"connector.name": "tpch", "y": "${ENV:HOME}"}}},
                "catalog 'x' (from trino): the value of y has ${provider:key}",
            ),
        ],
    )
    def test_a_worker_refuses_what_the_coordinator_would(
        self, worker_ctx, container, etc, trino, catalogs, problem
    ):
        relation, secret = coordinator(catalogs)

        state = worker_ctx.run(worker_ctx.on.config_changed(), worker(relation, secret, container))

        assert state.unit_status.name == "blocked"
        assert state.unit_status.message.startswith(problem)
        assert catalog_files(etc) == {}
        assert not list(etc.glob("**/evil.jar"))
        config = properties(read_files(etc)["config.properties"])
        assert config["coordinator"] == "false"

    def test_password_authentication_without_a_password_db_is_refused(
        self, worker_ctx, container, etc, trino
    ):
        relation, secret = coordinator(settings={"authentication": "password"})

        state = worker_ctx.run(worker_ctx.on.config_changed(), worker(relation, secret, container))

        assert state.unit_status == testing.BlockedStatus(
            "trino turns password authentication on but shares no password database: run the "
            "same charm revision on both applications"
        )
        assert read_files(etc) == {}

    def test_rules_that_do_not_parse_are_refused(self, worker_ctx, container, etc, trino):
        relation, secret = coordinator(settings={"access-control-rules": "{not json"})

        state = worker_ctx.run(worker_ctx.on.config_changed(), worker(relation, secret, container))

        assert state.unit_status.message.startswith(
            "trino shares rules this charm refuses (access-control-rules: not valid JSON"
        )
        assert read_files(etc) == {}

    def test_an_unknown_authentication_is_refused(self, worker_ctx, container, etc, trino):
        relation, secret = coordinator(settings={"authentication": "none-at-all"})

        state = worker_ctx.run(worker_ctx.on.config_changed(), worker(relation, secret, container))

        assert state.unit_status.message.startswith(
            "trino asks for authentication 'none-at-all', which this charm does not know"
        )
        assert read_files(etc) == {}

    @pytest.mark.parametrize(
        ("field", "value"),
        [("environment", "Lake\nx"), ("discovery-uri", "http://h:8080/\nnode.id=x")],
    )
    def test_cluster_settings_trino_would_refuse_wait(
        self, worker_ctx, container, etc, trino, field, value
    ):
        relation, secret = coordinator(**{field: json.dumps(value)})

        state = worker_ctx.run(worker_ctx.on.config_changed(), worker(relation, secret, container))

        assert state.unit_status.name == "waiting"
        assert state.unit_status.message.startswith(TestMalformedCoordinatorData.UNREADABLE)
        assert read_files(etc) == {}


BI_TOOLS = {"impersonation": [{"original_user": ".*", "new_user": ".*", "allow": True}]}


class TestImpersonation:
    @staticmethod
    def may_impersonate(rules: dict, original: str, new: str) -> bool:
        """Trino's file access control: first matching impersonation rule, else denied.

        Without impersonation rules, legacy principal rules mean "allowed", nothing "denied".
        """
        if "impersonation" not in rules:
            return "principals" in rules
        for rule in rules["impersonation"]:
            if re.fullmatch(rule.get("original_user", ".*"), original) and re.fullmatch(
                rule["new_user"], new
            ):
                return rule.get("allow", True)
        return False

    def rules_json(self, ctx, container, etc, operator_rules: dict) -> dict:
        ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                config={"access-control-rules": json.dumps(operator_rules)},
            ),
        )
        return json.loads(read_files(etc)["rules.json"])

    @pytest.mark.parametrize(
        "operator_rules",
        [BI_TOOLS, {"principals": [{"principal": ".*", "user": ".*", "allow": True}]}],
    )
    @pytest.mark.parametrize("internal", ["trino-k8s-charm", "trino-metrics"])
    def test_nobody_becomes_an_internal_user(
        self, ctx, container, etc, trino, operator_rules, internal
    ):
        rules = self.rules_json(ctx, container, etc, operator_rules)

        assert not self.may_impersonate(rules, "superset", internal)
        assert self.may_impersonate(rules, "superset", "alice")  # the operator's rule holds

    def test_without_operator_rules_nobody_impersonates(self, ctx, container, etc, trino):
        rules = self.rules_json(ctx, container, etc, {})

        assert not self.may_impersonate(rules, "superset", "alice")
        assert not self.may_impersonate(rules, "superset", "trino-k8s-charm")


class TestSecretsSyntax:
    """`${provider:key}` is replaced by Trino's secrets resolver: refuse it, never rewrite it."""

    @pytest.mark.parametrize(
        "value", ["pa${ENV:HOME}ss", "${env:X}", "${vault:a/b}", "a${x-y_1:z}b"]
    )
    def test_a_secret_value_trino_would_replace_is_refused_by_property(
        self, ctx, container, peers, etc, trino, value
    ):
        creds = testing.Secret({"username": "u", "password": value})
        catalog = {
            "connector": "postgresql",
            "properties": {"connection-url": "jdbc:postgresql://db:5432/sales"},
            "secret": creds.id,
            "secret-properties": {
                "connection-user": "username",
                "connection-password": "password",
            },
        }

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                relations={peers},
                secrets={creds},
                config={"catalog-config": yaml.safe_dump({"sales": catalog})},
            ),
        )

        assert state.unit_status == testing.BlockedStatus(
            "catalog 'sales' (config): the value of connection-password has ${provider:key}, "
            "which Trino replaces with a secret and cannot read as written: change the value"
        )
        assert catalog_files(etc) == {}
        assert value not in state.unit_status.message

    @pytest.mark.parametrize("value", ["pa$$word", "${nocolon}", "$x{a:b}", "{a:b}", "${:b}"])
    def test_dollar_signs_trino_reads_as_written_are_kept(self, ctx, container, etc, trino, value):
        catalog = {"connector": "memory", "properties": {"memory.max-data-per-node": value}}

        ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                config={"catalog-config": yaml.safe_dump({"mem": catalog})},
            ),
        )

        assert catalog_files(etc)["mem"]["memory.max-data-per-node"] == value

    def test_a_provider_value_is_refused_too(self, ctx, container, peers, etc, trino):
        login = login_secret({"username": "u", "password": "a${ENV:PATH}b"})
        relation = database_relation("postgresql", "db", login)

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(
                leader=True, containers={container}, relations={peers, relation}, secrets={login}
            ),
        )

        assert state.unit_status.message.startswith(
            "catalog 'db' (postgresql:db): the value of connection-password has ${provider:key}"
        )
        assert catalog_files(etc) == {}


def test_a_user_name_with_a_line_break_is_refused():
    """password.db is one `user:hash` line per user: a line break would split it."""
    from core import security  # noqa: PLC0415

    with pytest.raises(security.AccessInputError, match="is not a valid name"):
        security.parse_users({"users": yaml.safe_dump({"alice\n": "s3cret"})}, "secret:x")


def test_records_that_carry_a_secret_never_show_it():
    """A record in a traceback or a debug log shows where a secret goes, never the secret."""
    from core.catalogs import Resolved  # noqa: PLC0415
    from core.plan import File  # noqa: PLC0415
    from relations.s3 import BucketOffer  # noqa: PLC0415
    from relations.tls import TlsMaterial  # noqa: PLC0415
    from workload import Credentials  # noqa: PLC0415

    records = [
        Credentials(password="PW-S3CR3T", base_url="https://trino-0:8443"),
        Cluster("model", "http://trino-0:8080", "SHARED-S3CR3T"),
        TlsMaterial(keystore="-----BEGIN PRIVATE KEY----- KEY-S3CR3T", ca="CA"),
        BucketOffer(bucket="b", access_key="AK-S3CR3T", secret_key="SK-S3CR3T"),
        File("internal-communication.shared-secret=FILE-S3CR3T", 0o600),
        Resolved("postgresql:db", {"connection-password": "DB-S3CR3T"}, frozenset({"x"})),
    ]

    for record in records:
        assert "S3CR3T" not in repr(record), repr(record)
    assert "https://trino-0:8443" in repr(records[0]), "the rest stays readable"
