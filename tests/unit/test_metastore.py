"""The Iceberg JDBC catalog schema, created in a real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import itertools
import json
import pathlib
import socket

import pg
import pg8000.native
import pytest
from conftest import read_files
from ops import testing
from providers import (
    S3_KEYS,
    catalog_files,
    database_relation,
    login_secret,
    s3_relation,
    tls_secret,
)

from core.databases import Database
from core.lakehouse import ICEBERG_JDBC_SCHEMA
from metastore import MetastoreError, create_schema

pytestmark = pytest.mark.postgres

# What Trino (Iceberg's JdbcCatalog) reads and writes.
TRINO_COLUMNS = {
    "iceberg_namespace_properties": [
        ("catalog_name", "character varying", 255, "NO"),
        ("namespace", "character varying", 255, "NO"),
        ("property_key", "character varying", 255, "NO"),
        ("property_value", "character varying", 1000, "YES"),
    ],
    "iceberg_tables": [
        ("catalog_name", "character varying", 255, "NO"),
        ("table_namespace", "character varying", 255, "NO"),
        ("table_name", "character varying", 255, "NO"),
        ("metadata_location", "character varying", 1000, "YES"),
        ("previous_metadata_location", "character varying", 1000, "YES"),
        ("iceberg_type", "character varying", 5, "YES"),
    ],
}
_names = itertools.count()


@pytest.fixture
def database(postgres):
    """A fresh, empty database owned by the password-auth role."""
    with postgres.database(f"metastore_{next(_names)}") as name:
        yield name


def target(postgres, name: str) -> Database:
    return Database(
        endpoint="metastore",
        app="postgresql-k8s",
        name=name,
        hosts=(f"127.0.0.1:{postgres.port}",),
        user_secret="secret:unused",
    )


def columns(postgres, name: str) -> dict[str, list[tuple]]:
    connection = postgres.connect(name)
    try:
        rows = connection.run(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "ORDER BY table_name, ordinal_position"
        )
    finally:
        connection.close()
    found: dict[str, list[tuple]] = {}
    for table, *column in rows:
        found.setdefault(table, []).append(tuple(column))
    return found


def test_the_tables_have_the_columns_trino_writes(postgres, database):
    create_schema(target(postgres, database), pg.ROLE, pg.ROLE_PASSWORD)

    assert columns(postgres, database) == TRINO_COLUMNS


def test_a_second_run_is_a_no_op_that_keeps_the_data(postgres, database):
    create_schema(target(postgres, database), pg.ROLE, pg.ROLE_PASSWORD)
    connection = postgres.connect(database, superuser=False)
    connection.run(
        "INSERT INTO iceberg_tables VALUES ('lakehouse', 'sales', 'orders', 's3://m/1', NULL, "
        "'TABLE')"
    )
    connection.close()

    create_schema(target(postgres, database), pg.ROLE, pg.ROLE_PASSWORD)

    assert columns(postgres, database) == TRINO_COLUMNS
    connection = postgres.connect(database)
    assert connection.run("SELECT table_name FROM iceberg_tables") == [["orders"]]
    connection.close()


def test_an_older_schema_without_iceberg_type_gets_the_column(postgres, database):
    connection = postgres.connect(database, superuser=False)
    connection.run(
        "CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL, "
        "table_namespace VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL, "
        "metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000), "
        "PRIMARY KEY (catalog_name, table_namespace, table_name))"
    )
    connection.close()

    create_schema(target(postgres, database), pg.ROLE, pg.ROLE_PASSWORD)

    assert columns(postgres, database) == TRINO_COLUMNS


def test_a_failing_statement_leaves_no_partial_schema(postgres, database):
    broken = (ICEBERG_JDBC_SCHEMA[0], "CREATE TABLE iceberg_tables (catalog_name NOSUCHTYPE)")

    with pytest.raises(MetastoreError) as raised:
        create_schema(target(postgres, database), pg.ROLE, pg.ROLE_PASSWORD, statements=broken)

    assert str(raised.value) == (
        f"cannot create the Iceberg tables in database {database!r} on "
        f"127.0.0.1:{postgres.port}: PostgreSQL error 42704"
    )
    assert columns(postgres, database) == {}  # the first CREATE was rolled back too


def test_a_wrong_password_is_refused_without_echoing_any_credential(postgres, database):
    with pytest.raises(MetastoreError) as raised:
        create_schema(target(postgres, database), pg.ROLE, "not-the-Pa55word")

    assert str(raised.value) == (
        f"cannot log in to database {database!r} on 127.0.0.1:{postgres.port}: "
        "the password was refused"
    )
    assert columns(postgres, database) == {}


def test_tls_is_verified_against_the_providers_ca(postgres, database):
    secured = dataclasses.replace(target(postgres, database), tls=True, tls_ca=postgres.ca)

    create_schema(secured, pg.ROLE, pg.ROLE_PASSWORD)

    assert columns(postgres, database) == TRINO_COLUMNS


def test_tls_with_another_ca_is_refused(postgres, database):
    other_ca = (pathlib.Path(__file__).parent / "data" / "other-ca.pem").read_text()
    secured = dataclasses.replace(target(postgres, database), tls=True, tls_ca=other_ca)

    with pytest.raises(MetastoreError) as raised:
        create_schema(secured, pg.ROLE, pg.ROLE_PASSWORD)

    assert str(raised.value).startswith(
        f"cannot reach database {database!r} on 127.0.0.1:{postgres.port}: "
    )
    assert "certificate verify failed" in str(raised.value)
    assert columns(postgres, database) == {}


def test_tls_without_a_ca_still_encrypts(postgres, database):
    create_schema(
        dataclasses.replace(target(postgres, database), tls=True), pg.ROLE, pg.ROLE_PASSWORD
    )

    assert columns(postgres, database) == TRINO_COLUMNS


def test_a_missing_database_is_named(postgres):
    with pytest.raises(MetastoreError, match="the database does not exist"):
        create_schema(target(postgres, "no_such_db"), pg.ROLE, pg.ROLE_PASSWORD)


def test_a_user_without_rights_is_told_so(postgres, database):
    admin = postgres.connect()
    admin.run("CREATE ROLE stranger LOGIN PASSWORD 'Str4nger-pw'")
    admin.close()
    owner = postgres.connect(database)
    owner.run("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    owner.close()
    try:
        with pytest.raises(MetastoreError, match="the user may not create tables there"):
            create_schema(target(postgres, database), "stranger", "Str4nger-pw")
    finally:
        admin = postgres.connect()
        admin.run("DROP ROLE stranger")
        admin.close()
    assert columns(postgres, database) == {}


def test_an_unreachable_server_is_named_with_the_reason():
    with socket.socket() as sock:  # a localhost port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = Database("metastore", "pg", "x", (f"127.0.0.1:{port}",), "secret:x")

    with pytest.raises(MetastoreError) as raised:
        create_schema(unreachable, pg.ROLE, pg.ROLE_PASSWORD, timeout=2)

    assert (
        str(raised.value) == f"cannot reach database 'x' on 127.0.0.1:{port}: Connection refused"
    )


# The charm against the real server.


def charm_state(postgres, database, container, password=pg.ROLE_PASSWORD, tls=None):
    user = login_secret({"username": pg.ROLE, "password": password})
    metastore_rel = database_relation(
        "metastore",
        "postgresql-k8s",
        user,
        database=database,
        endpoints=f"127.0.0.1:{postgres.port}",
        tls=tls,
    )
    peers = testing.PeerRelation("trino-peers")
    s3 = s3_relation(0)
    return testing.State(
        leader=True,
        containers={container},
        relations={peers, metastore_rel, s3},
        secrets={user, *([tls] if tls else [])},
    ), peers


def test_the_leader_creates_the_tables_then_writes_the_catalog(
    ctx, container, etc, trino, postgres, database, monkeypatch
):
    state, peers = charm_state(postgres, database, container)

    after = ctx.run(ctx.on.config_changed(), state)

    assert columns(postgres, database) == TRINO_COLUMNS
    lakehouse = catalog_files(etc)["lakehouse"]
    assert lakehouse["iceberg.jdbc-catalog.connection-url"] == (
        f"jdbc:postgresql://127.0.0.1:{postgres.port}/{database}"
    )
    assert lakehouse["s3.aws-secret-key"] == S3_KEYS["secret-key"]
    assert after.unit_status == testing.ActiveStatus()

    # Recorded in peer data: later hooks open no connection at all.
    def no_connection(*args, **kwargs):
        raise AssertionError("a hook with nothing to do connected to PostgreSQL")

    monkeypatch.setattr(pg8000.native, "Connection", no_connection)
    again = ctx.run(ctx.on.update_status(), after)
    assert again.unit_status == testing.ActiveStatus()
    assert json.loads(again.get_relation(peers.id).local_app_data["metastore_schema"])


def test_a_wrong_password_blocks_with_a_clear_message_and_no_catalog(
    ctx, container, etc, trino, postgres, database
):
    state, _ = charm_state(postgres, database, container, password="wr0ng-Pa55")

    after = ctx.run(ctx.on.config_changed(), state)

    assert after.unit_status == testing.BlockedStatus(
        f"lakehouse catalog 'lakehouse': cannot log in to database {database!r} on "
        f"127.0.0.1:{postgres.port}: the password was refused; check the metastore relation "
        "with postgresql-k8s (the charm retries on every hook)"
    )
    assert "lakehouse" not in catalog_files(etc)
    assert columns(postgres, database) == {}


def test_a_tls_metastore_is_bootstrapped_over_tls_and_trino_gets_its_ca(
    ctx, container, etc, trino, postgres, database
):
    state, _ = charm_state(postgres, database, container, tls=tls_secret(postgres.ca))

    after = ctx.run(ctx.on.config_changed(), state)

    assert columns(postgres, database) == TRINO_COLUMNS
    url = catalog_files(etc)["lakehouse"]["iceberg.jdbc-catalog.connection-url"]
    assert url.endswith(
        "?ssl=true&sslmode=verify-full&sslrootcert=/etc/trino/certs/lakehouse-ca.pem"
    )
    assert read_files(etc)["certs/lakehouse-ca.pem"].strip() == postgres.ca.strip()
    assert after.unit_status == testing.ActiveStatus()
