"""Catalogs from relations on a real Trino: PostgreSQL over TLS, and the Iceberg lakehouse.

One `all` node for the module. The test plays the providers, writing their
databags and secrets the way postgresql-k8s and s3-integrator do, in front of a
real PostgreSQL (TLS from a test CA; clients off loopback must use TLS) and a
local S3 server (moto). Each relation that changes the catalog set restarts
Trino through the charm's own path.
"""

from __future__ import annotations

import json

import boto3
import netlab
import pytest
from components import ComponentError
from conftest import wait_for
from juju import Juju, RelationRecord, Unit
from ops import testing
from test_single_node import become_active, boot, query
from tests.unit import pg

POSTGRESQL = "postgresql-k8s"  # one PostgreSQL app, related on `postgresql` and `metastore`
S3 = "s3-integrator"
S3_KEYS = {"access-key": "live-access-key", "secret-key": "live-s3-Secr3t"}
SALES = [[1, "apples"], [2, "pears"], [3, "plums"]]
ORDERS = [[10, "bread"], [11, "cheese"]]


@pytest.fixture(scope="module")
def postgres(lab):
    """PostgreSQL on the pods' side of the bridge, TLS certificate from a test CA."""
    bindir = pg.server_bin()
    if bindir is None:
        raise ComponentError(
            "PostgreSQL server binaries not found: apt-get install postgresql (.ci/run does) "
            "or set PGBIN to the folder holding initdb"
        )
    with pg.running_server(bindir, host=netlab.HOST_IP) as server:
        yield server


@pytest.fixture(scope="module")
def node(juju: Juju, pods) -> Unit:
    unit = juju.deploy("trino", [pods("trino", 0)]).units[0]
    boot(juju, unit)
    become_active(juju, unit)
    return unit


def postgresql_app(juju: Juju) -> None:
    if POSTGRESQL not in juju.apps:
        juju.remote_app(POSTGRESQL)


def offer_database(juju: Juju, relation: RelationRecord, postgres: pg.Server) -> None:
    """What postgresql-k8s writes once it created the requested database and its user."""
    database = relation.app_data["trino"]["database"]
    endpoint = f"{postgres.host}:{postgres.port}"
    user = juju.add_secret(
        POSTGRESQL,
        {
            "username": pg.ROLE,
            "password": pg.ROLE_PASSWORD,
            "uris": f"postgresql://{pg.ROLE}:{pg.ROLE_PASSWORD}@{endpoint}/{database}",
        },
        grant_to="trino",
    )
    tls = juju.add_secret(POSTGRESQL, {"tls": "True", "tls-ca": postgres.ca}, grant_to="trino")
    relation.app_data[POSTGRESQL].update(
        {
            "database": database,
            "endpoints": endpoint,
            "read-only-endpoints": endpoint,
            "version": "16.9",
            "secret-user": user,
            "secret-tls": tls,
        }
    )


def answer(host: str, sql: str) -> list[list] | None:
    """The rows, or None while Trino restarts or does not know the catalog yet."""
    try:
        return query(host, sql)
    except Exception:
        return None


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_postgresql_catalog_reads_rows_over_verified_tls(node, juju, postgres):
    assert node.pod is not None
    postgresql_app(juju)
    relation = juju.integrate("trino", "postgresql", POSTGRESQL, "database", "postgresql_client")
    juju.settle()
    request = relation.app_data["trino"]
    assert request["database"] == POSTGRESQL
    assert {"username", "password", "tls-ca"} <= set(json.loads(request["requested-secrets"]))

    with postgres.database(POSTGRESQL):
        owner = postgres.connect(POSTGRESQL, superuser=False)
        owner.run("CREATE TABLE sales (id integer PRIMARY KEY, item text)")
        for row in SALES:
            owner.run("INSERT INTO sales VALUES (:id, :item)", id=row[0], item=row[1])
        owner.close()
        offer_database(juju, relation, postgres)
        juju.settle()

        rows = wait_for(
            "rows of postgresql_k8s.public.sales",
            lambda: answer(
                node.pod.ip, "SELECT id, item FROM postgresql_k8s.public.sales ORDER BY id"
            ),
            timeout=240,
            poll=3,
        )
    assert rows == SALES
    catalog = properties((node.pod.etc / "catalog" / "postgresql_k8s.properties").read_text())
    ca_file = "/etc/trino/certs/postgresql_k8s-ca.pem"
    assert catalog["connection-url"] == (
        f"jdbc:postgresql://{postgres.host}:{postgres.port}/{POSTGRESQL}"
        f"?ssl=true&sslmode=verify-full&sslrootcert={ca_file}"
    )
    assert (node.pod.etc / "certs" / "postgresql_k8s-ca.pem").read_text().strip() == (
        postgres.ca.strip()
    )
    assert become_active(juju, node).unit_status == testing.ActiveStatus()


def test_lakehouse_creates_its_metastore_and_writes_to_the_bucket(node, juju, postgres, s3):
    assert node.pod is not None
    postgresql_app(juju)
    metastore = juju.integrate("trino", "metastore", POSTGRESQL, "database", "postgresql_client")
    juju.settle()
    database = metastore.app_data["trino"]["database"]
    assert database == "trino-metastore"

    with postgres.database(database):
        offer_database(juju, metastore, postgres)
        juju.settle()
        # The leader created the Iceberg JDBC tables; the catalog waits for its bucket.
        admin = postgres.connect(database)
        tables = admin.run(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' ORDER BY table_name"
        )
        assert tables == [["iceberg_namespace_properties"], ["iceberg_tables"]]
        state = juju.run(node, lambda ctx, _: ctx.on.update_status())
        assert state.unit_status == testing.BlockedStatus(
            "lakehouse catalog 'lakehouse' needs object storage: "
            "`juju integrate trino:s3-credentials s3-integrator`"
        )

        juju.remote_app(S3)
        storage = juju.integrate("trino", "s3-credentials", S3, "s3-credentials", "s3")
        juju.settle()
        bucket = storage.app_data["trino"]["bucket"]
        client = boto3.client(
            "s3",
            endpoint_url=s3,
            region_name="us-east-1",
            aws_access_key_id=S3_KEYS["access-key"],
            aws_secret_access_key=S3_KEYS["secret-key"],
        )
        client.create_bucket(Bucket=bucket)
        keys = juju.add_secret(S3, S3_KEYS, grant_to="trino")
        storage.app_data[S3].update(
            {
                "bucket": bucket,
                "endpoint": s3,
                "region": "us-east-1",
                "path": "warehouse",
                "s3-uri-style": "path",
                "secret-extra": keys,
            }
        )
        juju.settle()

        wait_for(
            "the lakehouse catalog",
            lambda: answer(node.pod.ip, "SHOW SCHEMAS FROM lakehouse"),
            timeout=240,
            poll=3,
        )
        ip = node.pod.ip
        query(ip, "CREATE SCHEMA lakehouse.shop")
        query(ip, "CREATE TABLE lakehouse.shop.orders (id integer, item varchar)")
        assert query(ip, "INSERT INTO lakehouse.shop.orders VALUES (10, 'bread'), (11, 'cheese')")
        assert query(ip, "SELECT id, item FROM lakehouse.shop.orders ORDER BY id") == ORDERS

        assert admin.run("SELECT table_namespace, table_name FROM iceberg_tables") == [
            ["shop", "orders"]
        ]
        admin.close()
    listed = client.list_objects_v2(Bucket=bucket, Prefix="warehouse/shop/")
    names = [item["Key"] for item in listed.get("Contents", [])]
    assert any(name.endswith(".parquet") and "/data/" in name for name in names), names
    assert any(name.endswith(".metadata.json") for name in names), names
    assert become_active(juju, node).unit_status == testing.ActiveStatus()
