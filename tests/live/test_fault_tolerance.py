"""Fault-tolerant execution: a worker killed in the middle of a query, and the query survives.

A coordinator and two workers run `retry-policy=TASK` with the exchange on a local S3
server (moto), given on the `exchange-s3` relation the way s3-integrator gives it.
The coordinator hands its workers the policy and the exchange over `trino-coordinator`.
A join over tpch sf1 runs long enough to kill one worker's JVM under it (kill -9): the
query still returns the right answer, from tasks run again on the other worker out of
the spooled exchange data.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import boto3
import pytest
import trino
from conftest import wait_for
from juju import Juju, Unit
from lab import ACTIVE_NODES, once_listed, trino_pid
from ops import testing
from test_single_node import boot

SPOOL = "spool"  # the s3-integrator app that gives the exchange bucket
KEYS = {"access-key": "spool-access-key", "secret-key": "spool-Secr3t"}
# A repartitioned join: every stage writes its output to the exchange.
JOIN = (
    "SELECT count(*), count(DISTINCT o.orderkey) FROM tpch.sf1.orders o "
    "JOIN tpch.sf1.customer c ON o.custkey = c.custkey"
)
ROWS = [[1500000, 1500000]]  # TPC-H sf1: every order has its customer
WARM_UP = "SELECT count(*) FROM tpch.tiny.lineitem /* warm-up */"


def status(juju: Juju, unit: Unit) -> testing.StatusBase:
    return juju.run(unit, lambda ctx, _: ctx.on.update_status()).unit_status


def active(juju: Juju, unit: Unit) -> bool:
    juju.settle()  # the coordinator publishes once it serves; its workers hear of it
    return isinstance(status(juju, unit), testing.ActiveStatus)


def connect(unit: Unit, **session: str):
    assert unit.pod is not None
    return trino.dbapi.connect(
        host=unit.pod.ip, port=8080, user="live-test", session_properties=session
    )


def rows(unit: Unit, sql: str, **session: str) -> list[list]:
    with connect(unit, **session) as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.fixture(scope="module")
def bucket(s3: str):
    client = boto3.client(
        "s3",
        endpoint_url=s3,
        region_name="us-east-1",
        aws_access_key_id=KEYS["access-key"],
        aws_secret_access_key=KEYS["secret-key"],
    )
    return client


@pytest.fixture(scope="module")
def cluster(juju: Juju, pods, s3, bucket) -> tuple[Unit, list[Unit]]:
    coordinator = juju.deploy(
        "trino",
        [pods("trino", 0)],
        {
            "charm-function": "coordinator",
            "catalog-config": "tpch:\n  connector: tpch\n",
            "retry-policy": "TASK",
        },
    )
    workers = juju.deploy(
        "trino-worker",
        [pods("trino-worker", 0), pods("trino-worker", 1)],
        {"charm-function": "worker", "graceful-shutdown-period": "5s"},
    )
    leader = coordinator.units[0]
    boot(juju, leader)
    # TASK without an exchange: blocked with the fix, nothing written.
    assert status(juju, leader) == testing.BlockedStatus(
        "retry-policy=TASK needs an exchange bucket: "
        "`juju integrate trino:exchange-s3 s3-integrator` "
        "(or `juju config trino retry-policy=QUERY`)"
    )
    assert leader.pod is not None
    assert not (leader.pod.etc / "config.properties").exists()

    juju.remote_app(SPOOL)
    relation = juju.integrate("trino", "exchange-s3", SPOOL, "s3-credentials", "s3")
    juju.settle()
    name = relation.app_data["trino"]["bucket"]
    assert name == "trino-exchange"
    bucket.create_bucket(Bucket=name)
    keys = juju.add_secret(SPOOL, KEYS, grant_to="trino")
    relation.app_data[SPOOL].update(
        {
            "bucket": name,
            "endpoint": s3,
            "region": "us-east-1",
            "path": "spool",
            "s3-uri-style": "path",
            "secret-extra": keys,
        }
    )
    juju.settle()
    for unit in workers.units:
        boot(juju, unit)
    juju.integrate("trino", "trino-coordinator", "trino-worker", "trino-worker", "trino_cluster")
    juju.settle()
    for unit in [leader, *workers.units]:
        wait_for(
            f"{unit.name} active",
            lambda unit=unit: active(juju, unit),
            timeout=300,
            poll=3,
        )
    wait_for(
        "3 active nodes",
        lambda: once_listed(lambda: rows(leader, ACTIVE_NODES)) == [[3]],
        timeout=120,
        poll=2,
    )
    # Active is not yet serving tpch: CI met NO_NODES_AVAILABLE for the join right here.
    wait_for("tpch tasks on both workers", lambda: tpch_on(leader, workers.units), timeout=120)
    return leader, workers.units


def tpch_on(coordinator: Unit, workers: list[Unit]) -> bool:
    """Whether every worker has run a tpch task.

    Trino lists a node as active a few seconds before it maps it to the node's
    catalogs; until then a tpch query runs on the others, or on none.
    """
    once_listed(lambda: rows(coordinator, WARM_UP, retry_policy="NONE"))
    ran = rows(
        coordinator,
        "SELECT DISTINCT t.node_id FROM system.runtime.tasks t "  # noqa: S608 (a constant)
        f"JOIN system.runtime.queries q ON t.query_id = q.query_id WHERE q.query = '{WARM_UP}'",
        retry_policy="NONE",
    )
    return {row[0] for row in ran} >= {unit.name.replace("/", "-") for unit in workers}


def test_every_node_has_the_policy_and_a_private_exchange(cluster):
    coordinator, workers = cluster
    for unit in [coordinator, *workers]:
        assert unit.pod is not None
        exchange = unit.pod.etc / "exchange-manager.properties"
        assert exchange.stat().st_mode & 0o777 == 0o600
        text = exchange.read_text()
        assert "exchange.base-directories=s3://trino-exchange/spool" in text
        assert f"exchange.s3.aws-secret-key={KEYS['secret-key']}" in text
        assert "retry-policy=TASK" in (unit.pod.etc / "config.properties").read_text()


def test_a_query_survives_a_worker_killed_in_the_middle(cluster, bucket):
    coordinator, workers = cluster
    victim = workers[1]
    assert victim.pod is not None
    result: dict[str, object] = {}

    def run() -> None:
        start = time.monotonic()
        try:
            result["rows"] = rows(coordinator, JOIN)
        except Exception as error:  # the assertion below shows it
            result["error"] = error
        result["seconds"] = time.monotonic() - start

    spooled: set[str] = set()

    def spool_files() -> None:
        listed = bucket.list_objects_v2(Bucket="trino-exchange", Prefix="spool/")
        spooled.update(item["Key"] for item in listed.get("Contents", []))

    def victim_busy() -> bool:
        spool_files()
        running = rows(
            coordinator,
            "SELECT count(*) FROM system.runtime.tasks "  # noqa: S608 (our own node id)
            f"WHERE node_id = '{victim.name.replace('/', '-')}' AND state = 'RUNNING'",
            retry_policy="NONE",
        )
        return running[0][0] > 0 and bool(spooled)

    query = threading.Thread(target=run)
    query.start()
    try:
        wait_for("the join running on the victim and spooling", victim_busy, timeout=120)
        assert "seconds" not in result, "the query ended before the worker could be killed"
        os.kill(trino_pid(victim.pod), signal.SIGKILL)
        killed = time.monotonic()
        while query.is_alive():
            spool_files()
            query.join(timeout=2)
    finally:
        query.join(timeout=600)

    print(f"join: {result.get('seconds')}s; worker killed; {len(spooled)} spool files seen")
    assert "error" not in result, result.get("error")
    assert result["rows"] == ROWS
    assert time.monotonic() - killed > 0
    assert spooled, "the exchange bucket never got spool files"
