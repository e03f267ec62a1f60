"""Catalogs made by the postgresql, mysql, metastore and s3-credentials relations."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import read_files
from ops import testing
from providers import (
    CA,
    LOGIN,
    S3_KEYS,
    catalog_files,
    database_relation,
    login_secret,
    mode,
    s3_relation,
    tls_secret,
)

import metastore

PG_URL = "jdbc:postgresql://pg-primary.db.svc.cluster.local:5432"
REQUESTED = '["username", "password", "tls", "tls-ca", "uris", "read-only-uris"]'


def leader_state(container, peers, *relations, secrets=(), **kwargs) -> testing.State:
    return testing.State(
        leader=True,
        containers={container},
        relations={peers, *relations},
        secrets=set(secrets),
        **kwargs,
    )


class TestPostgresql:
    def test_the_leader_asks_for_a_database_named_after_the_app_credentials_as_secrets(
        self, ctx, container, peers, trino
    ):
        relation = database_relation("postgresql", "sales-db")

        state = ctx.run(
            ctx.on.relation_created(relation), leader_state(container, peers, relation)
        )

        assert state.get_relation(relation.id).local_app_data == {
            "database": "sales-db",
            "requested-secrets": REQUESTED,
        }
        assert json.loads(REQUESTED) == ["username", "password", "tls", "tls-ca", "uris",
                                         "read-only-uris"]  # fmt: skip

    def test_database_names_overrides_the_requested_database(self, ctx, container, peers, trino):
        relation = database_relation("postgresql", "sales-db")
        state = leader_state(
            container, peers, relation, config={"database-names": "{sales-db: sales_2024}"}
        )

        state = ctx.run(ctx.on.relation_created(relation), state)

        assert state.get_relation(relation.id).local_app_data["database"] == "sales_2024"

    def test_a_non_leader_writes_nothing_in_the_relation(self, ctx, container, trino):
        relation = database_relation("postgresql", "sales-db")

        state = ctx.run(
            ctx.on.relation_created(relation),
            testing.State(containers={container}, relations={relation}),
        )

        assert state.get_relation(relation.id).local_app_data == {}

    def test_before_the_provider_answers_the_unit_waits_naming_the_relation(
        self, ctx, container, peers, etc, trino
    ):
        relation = database_relation("postgresql", "sales-db")

        state = ctx.run(
            ctx.on.relation_changed(relation), leader_state(container, peers, relation)
        )

        assert state.unit_status == testing.WaitingStatus(
            "postgresql relation with sales-db: waiting for sales-db to create database "
            "'sales-db' and share its endpoints and login secret"
        )
        assert catalog_files(etc) == {}

    def test_provider_data_and_secret_make_a_catalog_file_only_trino_can_read(
        self, ctx, container, peers, etc, trino
    ):
        user = login_secret()
        relation = database_relation("postgresql", "sales-db", user)

        state = ctx.run(
            ctx.on.relation_changed(relation),
            leader_state(container, peers, relation, secrets=[user]),
        )

        assert catalog_files(etc) == {
            "sales_db": {
                "connector.name": "postgresql",
                "connection-url": f"{PG_URL}/sales-db",
                "connection-user": LOGIN["username"],
                "connection-password": LOGIN["password"],
            }
        }
        assert mode(etc / "catalog" / "sales_db.properties") == 0o600
        assert state.unit_status == testing.ActiveStatus()

    def test_the_credentials_are_never_in_the_databag_plan_status_or_listing(
        self, ctx, container, peers, trino
    ):
        user = login_secret()
        relation = database_relation("postgresql", "sales-db", user)
        state = ctx.run(
            ctx.on.relation_changed(relation),
            leader_state(container, peers, relation, secrets=[user]),
        )

        ctx.run(ctx.on.action("list-catalogs"), state)

        assert ctx.action_results is not None
        assert json.loads(ctx.action_results["catalogs"]) == [
            {"name": "sales_db", "connector": "postgresql", "source": "postgresql:sales-db"}
        ]
        seen = [
            json.dumps(ctx.action_results),
            state.get_container("trino").plan.to_yaml(),
            state.unit_status.message,
            json.dumps([dict(r.local_app_data) for r in state.relations]),
            "\n".join(log.message for log in ctx.juju_log),
        ]
        for value in LOGIN.values():
            assert all(value not in text for text in seen)

    def test_tls_turns_on_ssl_verified_against_the_ca_pushed_to_the_container(
        self, ctx, container, peers, etc, trino
    ):
        user, tls = login_secret(), tls_secret()
        relation = database_relation("postgresql", "sales-db", user, tls=tls)

        ctx.run(
            ctx.on.relation_changed(relation),
            leader_state(container, peers, relation, secrets=[user, tls]),
        )

        ca_file = "/etc/trino/certs/sales_db-ca.pem"
        assert catalog_files(etc)["sales_db"]["connection-url"] == (
            f"{PG_URL}/sales-db?ssl=true&sslmode=verify-full&sslrootcert={ca_file}"
        )
        assert read_files(etc)["certs/sales_db-ca.pem"] == CA + "\n"
        assert mode(etc / "certs" / "sales_db-ca.pem") == 0o600
        assert sorted(read_files(etc)) == sorted(
            [*[n for n in read_files(etc) if not n.startswith(("catalog/", "certs/"))],
             "catalog/sales_db.properties", "certs/sales_db-ca.pem"]
        )  # fmt: skip

    def test_tls_reported_off_leaves_ssl_off(self, ctx, container, peers, etc, trino):
        user, tls = login_secret(), tls_secret(enabled="False")
        relation = database_relation("postgresql", "sales-db", user, tls=tls)

        ctx.run(
            ctx.on.relation_changed(relation),
            leader_state(container, peers, relation, secrets=[user, tls]),
        )

        assert catalog_files(etc)["sales_db"]["connection-url"] == f"{PG_URL}/sales-db"
        assert "certs/sales_db-ca.pem" not in read_files(etc)

    def test_a_tls_secret_not_readable_yet_waits(self, ctx, container, peers, etc, trino):
        user, tls = login_secret(), tls_secret()
        relation = database_relation("postgresql", "sales-db", user, tls=tls)

        state = ctx.run(
            ctx.on.relation_changed(relation),
            leader_state(container, peers, relation, secrets=[user]),
        )

        assert state.unit_status == testing.WaitingStatus(
            "postgresql relation with sales-db: waiting for its TLS secret"
        )
        assert catalog_files(etc) == {}

    def test_a_rotated_password_rewrites_the_file_and_restarts_once(
        self, ctx, container, peers, etc, trino, pebble_calls
    ):
        user = login_secret()
        relation = database_relation("postgresql", "sales-db", user)
        state = ctx.run(
            ctx.on.relation_changed(relation),
            leader_state(container, peers, relation, secrets=[user]),
        )
        pebble_calls.restarts.clear()
        rotated = dataclasses.replace(user, latest_content={**LOGIN, "password": "n3w-Pa55"})

        ctx.run(ctx.on.secret_changed(rotated), dataclasses.replace(state, secrets={rotated}))

        assert catalog_files(etc)["sales_db"]["connection-password"] == "n3w-Pa55"
        assert pebble_calls.restarts == [("trino",)]

    def test_a_hook_with_nothing_new_writes_and_restarts_nothing(
        self, ctx, container, peers, etc, trino, pebble_calls
    ):
        user = login_secret()
        relation = database_relation("postgresql", "sales-db", user)
        state = ctx.run(
            ctx.on.relation_changed(relation),
            leader_state(container, peers, relation, secrets=[user]),
        )
        before = {p: p.stat().st_mtime_ns for p in etc.rglob("*")}
        pebble_calls.restarts.clear()

        after = ctx.run(ctx.on.update_status(), state)

        assert {p: p.stat().st_mtime_ns for p in etc.rglob("*")} == before
        assert pebble_calls.restarts == []
        assert after.get_relation(relation.id).local_app_data == (
            state.get_relation(relation.id).local_app_data
        )

    def test_a_broken_relation_removes_its_catalog_and_ca(
        self, ctx, container, peers, etc, trino, pebble_calls
    ):
        user, tls = login_secret(), tls_secret()
        relation = database_relation("postgresql", "sales-db", user, tls=tls)
        state = leader_state(container, peers, relation, secrets=[user, tls])
        state = ctx.run(ctx.on.relation_changed(relation), state)
        assert set(catalog_files(etc)) == {"sales_db"}
        assert "certs/sales_db-ca.pem" in read_files(etc)

        after = ctx.run(ctx.on.relation_broken(state.get_relation(relation.id)), state)

        assert catalog_files(etc) == {}
        assert not any(name.startswith("certs/") for name in read_files(etc))
        assert after.unit_status == testing.ActiveStatus()

    def test_a_standby_unit_writes_no_catalog(self, ctx, container, etc, trino):
        """Only the coordinator leader runs Trino; a standby unit writes no file at all."""
        user = login_secret()
        relation = database_relation("postgresql", "sales-db", user)

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(containers={container}, relations={relation}, secrets={user}),
        )

        assert catalog_files(etc) == {}
        assert state.unit_status.message.startswith("standby:")

    def test_each_related_app_is_its_own_catalog(self, ctx, container, peers, etc, trino):
        sales, hr = login_secret(), login_secret({"username": "hr", "password": "hr-Pa55"})
        first = database_relation("postgresql", "sales-db", sales)
        second = database_relation("postgresql", "hr-db", hr, endpoints="hr:5433")

        ctx.run(
            ctx.on.relation_changed(first),
            leader_state(container, peers, first, second, secrets=[sales, hr]),
        )

        files = catalog_files(etc)
        assert set(files) == {"sales_db", "hr_db"}
        assert files["hr_db"]["connection-url"] == "jdbc:postgresql://hr:5433/hr-db"
        assert files["hr_db"]["connection-user"] == "hr"

    def test_a_name_clash_with_catalog_config_blocks_naming_both(
        self, ctx, container, peers, etc, trino
    ):
        user = login_secret()
        relation = database_relation("postgresql", "sales-db", user)
        config = {"catalog-config": "sales_db: {connector: tpch}"}

        state = ctx.run(
            ctx.on.relation_changed(relation),
            leader_state(container, peers, relation, secrets=[user], config=config),
        )

        assert state.unit_status == testing.BlockedStatus(
            "catalog 'sales_db' is defined by both config and postgresql:sales-db; "
            "remove or rename one of them"
        )
        assert catalog_files(etc) == {}

    def test_bad_database_names_blocks_naming_the_option(self, ctx, container, peers, trino):
        relation = database_relation("postgresql", "sales-db")

        state = ctx.run(
            ctx.on.relation_created(relation),
            leader_state(container, peers, relation, config={"database-names": "[sales]"}),
        )

        assert state.unit_status == testing.BlockedStatus(
            "database-names: must be a YAML mapping of related application to database name, "
            "e.g. `{postgresql-k8s: sales}`"
        )
        assert state.get_relation(relation.id).local_app_data["database"] == "sales-db"


class TestMysql:
    def test_mysql_speaks_the_same_protocol_and_makes_a_mysql_catalog(
        self, ctx, container, peers, etc, trino
    ):
        user, tls = login_secret(), tls_secret()
        relation = database_relation(
            "mysql", "orders", user, endpoints="orders-primary:3306", tls=tls
        )

        state = ctx.run(
            ctx.on.relation_changed(relation),
            leader_state(container, peers, relation, secrets=[user, tls]),
        )

        assert state.get_relation(relation.id).local_app_data == {
            "database": "orders",
            "requested-secrets": REQUESTED,
        }
        assert catalog_files(etc) == {
            "orders": {
                "connector.name": "mysql",
                "connection-url": "jdbc:mysql://orders-primary:3306?sslMode=REQUIRED",
                "connection-user": LOGIN["username"],
                "connection-password": LOGIN["password"],
            }
        }


def lakehouse_state(container, peers, metastore_user, s3, *secrets, **kwargs):
    metastore_rel = database_relation(
        "metastore", "postgresql-k8s", metastore_user, database="trino-k8s-metastore"
    )
    relations = [r for r in (metastore_rel, s3) if r is not None]
    return metastore_rel, leader_state(container, peers, *relations, secrets=secrets, **kwargs)


class TestLakehouse:
    def test_the_requests_match_the_interfaces(self, ctx, container, peers, trino):
        s3 = s3_relation(None)
        metastore_rel, state = lakehouse_state(container, peers, None, s3)

        state = ctx.run(ctx.on.relation_created(s3), state)

        assert state.get_relation(metastore_rel.id).local_app_data == {
            "database": "trino-k8s-metastore",
            "requested-secrets": REQUESTED,
        }
        assert state.get_relation(s3.id).local_app_data == {
            "bucket": "trino-k8s",
            "requested-secrets": '["access-key", "secret-key"]',
            "lib-version": "1.0",
        }

    @pytest.mark.parametrize("version", [0, 1])
    def test_metastore_and_s3_make_an_iceberg_catalog_after_the_schema_exists(
        self, ctx, container, peers, etc, trino, schema_calls, version
    ):
        user = login_secret()
        extra = testing.Secret(tracked_content=dict(S3_KEYS))
        s3 = s3_relation(version, extra)
        _, state = lakehouse_state(container, peers, user, s3, user, extra)

        after = ctx.run(ctx.on.relation_changed(s3), state)

        assert schema_calls == [("trino-k8s-metastore", LOGIN["username"], LOGIN["password"])]
        assert catalog_files(etc) == {
            "lakehouse": {
                "connector.name": "iceberg",
                "fs.s3.enabled": "true",
                "iceberg.catalog.type": "jdbc",
                "iceberg.jdbc-catalog.catalog-name": "lakehouse",
                "iceberg.jdbc-catalog.connection-password": LOGIN["password"],
                "iceberg.jdbc-catalog.connection-url": f"{PG_URL}/trino-k8s-metastore",
                "iceberg.jdbc-catalog.connection-user": LOGIN["username"],
                "iceberg.jdbc-catalog.default-warehouse-dir": "s3://lake/warehouse",
                "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
                "s3.aws-access-key": S3_KEYS["access-key"],
                "s3.aws-secret-key": S3_KEYS["secret-key"],
                "s3.endpoint": "http://minio.example:9000",
                "s3.path-style-access": "true",
                "s3.region": "eu-west-1",
            }
        }
        assert mode(etc / "catalog" / "lakehouse.properties") == 0o600
        assert after.unit_status == testing.ActiveStatus()
        peer_data = after.get_relation(peers.id).local_app_data
        assert "metastore_schema" in peer_data
        for value in [*LOGIN.values(), *S3_KEYS.values()]:
            assert value not in json.dumps(dict(peer_data))
            assert value not in after.unit_status.message

    def test_rotated_v1_s3_keys_are_rewritten_and_restart_once(
        self, ctx, container, peers, etc, trino, schema_calls, pebble_calls
    ):
        user = login_secret()
        extra = testing.Secret(tracked_content=dict(S3_KEYS))
        s3 = s3_relation(1, extra)
        _, state = lakehouse_state(container, peers, user, s3, user, extra)
        state = ctx.run(ctx.on.relation_changed(s3), state)
        pebble_calls.restarts.clear()
        rotated = dataclasses.replace(
            extra, latest_content={**S3_KEYS, "secret-key": "r0tated-S3-key"}
        )

        ctx.run(
            ctx.on.secret_changed(rotated), dataclasses.replace(state, secrets={user, rotated})
        )

        assert catalog_files(etc)["lakehouse"]["s3.aws-secret-key"] == "r0tated-S3-key"
        assert pebble_calls.restarts == [("trino",)]

    def test_the_lakehouse_name_comes_from_the_option(
        self, ctx, container, peers, etc, trino, schema_calls
    ):
        user = login_secret()
        s3 = s3_relation(0)
        config = {"lakehouse-catalog-name": "iceberg_lake"}
        _, state = lakehouse_state(container, peers, user, s3, user, config=config)

        ctx.run(ctx.on.relation_changed(s3), state)

        assert catalog_files(etc)["iceberg_lake"]["iceberg.jdbc-catalog.catalog-name"] == (
            "iceberg_lake"
        )

    def test_a_bad_lakehouse_name_blocks_naming_the_option(
        self, ctx, container, peers, etc, trino, schema_calls
    ):
        user = login_secret()
        s3 = s3_relation(0)
        config = {"lakehouse-catalog-name": "Lake-House"}
        _, state = lakehouse_state(container, peers, user, s3, user, config=config)

        after = ctx.run(ctx.on.relation_changed(s3), state)

        assert after.unit_status.name == "blocked"
        assert after.unit_status.message.startswith(
            "lakehouse-catalog-name: 'Lake-House' is not a catalog name"
        )
        assert catalog_files(etc) == {}

    def test_a_tls_metastore_gets_ssl_and_its_ca(
        self, ctx, container, peers, etc, trino, schema_calls
    ):
        user, tls = login_secret(), tls_secret()
        s3 = s3_relation(0)
        metastore_rel = database_relation(
            "metastore", "postgresql-k8s", user, database="meta", tls=tls
        )
        state = leader_state(container, peers, metastore_rel, s3, secrets=[user, tls])

        ctx.run(ctx.on.relation_changed(metastore_rel), state)

        url = catalog_files(etc)["lakehouse"]["iceberg.jdbc-catalog.connection-url"]
        assert url == (
            f"{PG_URL}/meta?ssl=true&sslmode=verify-full"
            "&sslrootcert=/etc/trino/certs/lakehouse-ca.pem"
        )
        assert read_files(etc)["certs/lakehouse-ca.pem"] == CA + "\n"

    def test_only_a_metastore_says_s3_is_missing(
        self, ctx, container, peers, etc, trino, schema_calls
    ):
        user = login_secret()
        _, state = lakehouse_state(container, peers, user, None, user)

        after = ctx.run(ctx.on.update_status(), state)

        assert after.unit_status == testing.BlockedStatus(
            "lakehouse catalog 'lakehouse' needs object storage: "
            "`juju integrate trino-k8s:s3-credentials s3-integrator`"
        )
        assert catalog_files(etc) == {}

    def test_only_s3_says_the_metastore_is_missing(self, ctx, container, peers, etc, trino):
        s3 = s3_relation(0)

        after = ctx.run(ctx.on.relation_changed(s3), leader_state(container, peers, s3))

        assert after.unit_status == testing.BlockedStatus(
            "lakehouse catalog 'lakehouse' needs a metastore: "
            "`juju integrate trino-k8s:metastore postgresql-k8s`"
        )

    def test_an_s3_provider_without_keys_waits_naming_them(
        self, ctx, container, peers, etc, trino, schema_calls
    ):
        user = login_secret()
        s3 = testing.Relation(
            "s3-credentials", remote_app_name="s3-integrator", remote_app_data={"bucket": "lake"}
        )
        _, state = lakehouse_state(container, peers, user, s3, user)

        after = ctx.run(ctx.on.relation_changed(s3), state)

        assert after.unit_status == testing.WaitingStatus(
            "s3-credentials relation with s3-integrator: waiting for access-key, secret-key "
            "(`juju run s3-integrator/leader sync-s3-credentials` if it is an s3-integrator)"
        )
        assert catalog_files(etc) == {}

    def test_an_unreadable_v1_secret_waits(self, ctx, container, peers, etc, trino, schema_calls):
        user = login_secret()
        extra = testing.Secret(tracked_content=dict(S3_KEYS))
        s3 = s3_relation(1, extra)
        _, state = lakehouse_state(container, peers, user, s3, user)

        after = ctx.run(ctx.on.relation_changed(s3), state)

        assert after.unit_status == testing.WaitingStatus(
            "s3-credentials relation with s3-integrator: its secret cannot be read yet"
        )

    def test_the_schema_is_created_once_then_never_again(
        self, ctx, container, peers, etc, trino, schema_calls
    ):
        user = login_secret()
        s3 = s3_relation(0)
        _, state = lakehouse_state(container, peers, user, s3, user)
        state = ctx.run(ctx.on.relation_changed(s3), state)

        ctx.run(ctx.on.update_status(), state)
        ctx.run(ctx.on.config_changed(), state)

        assert len(schema_calls) == 1

    def test_a_failed_bootstrap_blocks_and_writes_no_catalog(
        self, ctx, container, peers, etc, trino, monkeypatch
    ):
        def refuse(database, username, password, **_):
            raise metastore.MetastoreError(
                f"cannot log in to database {database.name!r} on pg:5432: the password was refused"
            )

        monkeypatch.setattr(metastore, "create_schema", refuse)
        user = login_secret()
        s3 = s3_relation(0)
        _, state = lakehouse_state(container, peers, user, s3, user)

        after = ctx.run(ctx.on.relation_changed(s3), state)

        assert after.unit_status == testing.BlockedStatus(
            "lakehouse catalog 'lakehouse': cannot log in to database 'trino-k8s-metastore' on "
            "pg:5432: the password was refused; check the metastore relation with "
            "postgresql-k8s (the charm retries on every hook)"
        )
        assert catalog_files(etc) == {}
        peer_data = after.get_relation(peers.id).local_app_data
        assert json.loads(peer_data.get("metastore_schema", '""')) == ""

    def test_a_revoked_metastore_secret_blocks_naming_it(
        self, ctx, container, peers, etc, trino, schema_calls
    ):
        user = login_secret()
        s3 = s3_relation(0)
        _, state = lakehouse_state(container, peers, user, s3)

        after = ctx.run(ctx.on.relation_changed(s3), state)

        assert after.unit_status.name == "blocked"
        assert after.unit_status.message.startswith(
            f"lakehouse catalog 'lakehouse': secret {user.id} does not exist or is not granted"
        )
        assert schema_calls == []

    def test_a_new_leader_trusts_the_recorded_schema_and_writes_the_catalog(
        self, ctx, container, etc, trino, schema_calls
    ):
        user = login_secret()
        s3 = s3_relation(0)
        metastore_rel = database_relation(
            "metastore", "postgresql-k8s", user, database="trino-k8s-metastore"
        )
        peers = testing.PeerRelation("trino-peers")
        state = testing.State(
            containers={container}, relations={peers, metastore_rel, s3}, secrets={user}
        )

        waiting = ctx.run(ctx.on.relation_changed(s3), state)

        # A non-leader stands by: it writes nothing and never touches the database.
        assert waiting.unit_status.message.startswith("standby:")
        assert catalog_files(etc) == {}
        assert schema_calls == []

        # What the leader records once the schema exists.
        recorded = json.dumps(
            f"metastore:{metastore_rel.id}:postgresql-k8s/trino-k8s-metastore"
            "@pg-primary.db.svc.cluster.local:5432"
        )
        peers = dataclasses.replace(peers, local_app_data={"metastore_schema": recorded})
        ready = ctx.run(
            ctx.on.leader_elected(),
            dataclasses.replace(waiting, leader=True, relations={peers, metastore_rel, s3}),
        )

        assert "lakehouse" in catalog_files(etc)
        assert ready.unit_status == testing.ActiveStatus()
        assert schema_calls == []

    def test_removing_s3_removes_the_lakehouse_and_says_what_is_missing(
        self, ctx, container, peers, etc, trino, schema_calls
    ):
        user = login_secret()
        s3 = s3_relation(0)
        _, state = lakehouse_state(container, peers, user, s3, user)
        state = ctx.run(ctx.on.relation_changed(s3), state)

        after = ctx.run(ctx.on.relation_broken(state.get_relation(s3.id)), state)

        assert catalog_files(etc) == {}
        assert after.unit_status.message.startswith(
            "lakehouse catalog 'lakehouse' needs object storage"
        )
