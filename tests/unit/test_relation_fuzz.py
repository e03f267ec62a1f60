"""Property tests: whatever a related application writes, no hook fails.

Every relation endpoint of metadata.yaml is fed remote application and unit
databags, and the secrets its protocol passes. Each example starts from what a
well-behaved peer writes and then drops keys, replaces values with anything
(text, JSON, secret ids, near-misses) and adds keys, so examples reach past the
first check. The hook must not raise, must end with a status, and must write
nothing outside the charm's own folder, /etc/trino.
"""

from __future__ import annotations

import json
import os
import pathlib
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ops import testing

import metastore
import restarts
import status
import workload
from charm import TrinoK8sCharm

METADATA = yaml.safe_load((pathlib.Path(__file__).parents[2] / "metadata.yaml").read_text())
PEERS = next(iter(METADATA["peers"]))
ENDPOINTS = sorted([*METADATA["provides"], *METADATA["requires"], *METADATA["peers"]])
CA = (pathlib.Path(__file__).parent / "data" / "other-ca.pem").read_text()

# Secrets a remote application may grant us (fixed ids, so a failing example replays).
LOGIN, TLS, EXTRA, CLUSTER = (f"secret:d0fuzz{number:014d}" for number in range(4))
SECRETS = {
    LOGIN: {"username": "u", "password": "p", "uris": "postgresql://u:p@pg:5432/db"},
    TLS: {"tls": "True", "tls-ca": CA},
    EXTRA: {"access-key": "AKIA", "secret-key": "s3cr3t"},
    CLUSTER: {
        "shared-secret": "c2hhcmVk",
        "catalog-credentials": json.dumps({"lake": {"s3.aws-secret-key": "k"}}),
        "password-db": "alice:$2b$10$abcdefghijklmnopqrstuv",
        "charm-password": "pw",
    },
}
DATABASE = {
    "database": "db",
    "endpoints": "pg-primary.db.svc:5432",
    "read-only-endpoints": "pg-replicas.db.svc:5432",
    "version": "16.9",
    "secret-user": LOGIN,
    "secret-tls": TLS,
}
# What a well-behaved remote application writes, per endpoint: (app data, unit data).
VALID: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "trino-peers": (
        {
            "catalogs": json.dumps({"t": {"connector": "tpch", "properties": {}}}),
            "leader": json.dumps("trino-k8s/0"),
            "restart_granted": json.dumps("trino-k8s/1"),
            "restart_epoch": "1",
            "metastore_schema": json.dumps("metastore:1:pg/db@pg:5432"),
        },
        {"restart_request": "true", "restart_started": "1.5", "restart_epoch": "1"},
    ),
    "trino-worker": (
        {
            "discovery-uri": json.dumps("http://trino-0.trino-endpoints.m.svc:8080"),
            "environment": json.dumps("m"),
            "catalogs": json.dumps(
                {
                    "lake": {
                        "properties": {
                            "connector.name": "iceberg",
                            "iceberg.catalog.type": "rest",
                            "iceberg.rest-catalog.uri": "https://rest.example",
                        },
                        "files": {"/etc/trino/certs/lake-jvm-ca.pem": CA},
                    }
                }
            ),
            "settings": json.dumps({"authentication": "password", "access-control-rules": "{}"}),
            "secret-id": json.dumps(CLUSTER),
        },
        {},
    ),
    "postgresql": (DATABASE, {}),
    "mysql": (DATABASE, {}),
    "metastore": (DATABASE, {}),
    "s3-credentials": (
        {
            "bucket": "lake",
            "endpoint": "https://minio:9000",
            "region": "eu",
            "path": "/w/",
            "s3-uri-style": "path",
            "secret-extra": EXTRA,
            "tls-ca-chain": json.dumps([CA]),
            "lib-version": "1.0",
        },
        {},
    ),
    "ingress": ({"ingress": json.dumps({"url": "https://lake.example/trino"})}, {}),
    "trino-catalog": ({"app_name": "superset"}, {}),
    "logging": ({}, {"endpoint": json.dumps({"url": "http://loki:3100/loki/api/v1/push"})}),
    "tracing": (
        {
            "receivers": json.dumps(
                [{"protocol": {"name": "otlp_grpc", "type": "grpc"}, "url": "tempo:4317"}]
            )
        },
        {},
    ),
    "certificates": (
        {
            "certificates": json.dumps(
                [{"certificate": CA, "ca": CA, "chain": [CA], "certificate_signing_request": "x"}]
            )
        },
        {},
    ),
}

texts = st.text(max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
near_misses = st.sampled_from(
    [
        "",
        "true",
        "-1",
        "pg:",
        "pg:5432,",
        "pg:\u00b2",
        "pg:\u0665\u0664\u0663\u0662",
        "h:99999",
        "[::1]:5432",
        "http://h:8080",
        json.dumps({"url": "ftp://x"}),
        json.dumps({"url": 5}),
        json.dumps({"a": {"properties": {"connector.name": "tpch"}, "files": {}}}),
        json.dumps({"a": {"properties": "tpch"}}),
        json.dumps({"a": {"properties": {"connector.name": "tpch"}, "files": {"/etc/x": "y"}}}),
        json.dumps(["not a certificate"]),
        "[]",
        "{}",
        *SECRETS,
        *(json.dumps(secret_id) for secret_id in SECRETS),
    ]
)
anything = st.one_of(near_misses, texts, json_values.map(json.dumps))
secret_keys = st.from_regex(r"[a-z](-?[a-z0-9]){2,8}", fullmatch=True)


@st.composite
def mutated(draw, valid: dict[str, str], keys: st.SearchStrategy[str]) -> dict[str, str]:
    """``valid`` with up to two values replaced by anything, one key dropped, keys added.

    Most of the databag stays as a good peer writes it, so examples get past the
    first check and reach the code behind it.
    """
    data = dict(valid)
    if valid:
        names = st.sampled_from(sorted(valid))
        for key in draw(st.lists(names, max_size=2, unique=True)):
            data[key] = draw(anything)
        for key in draw(st.lists(names, max_size=1)):
            data.pop(key, None)
    return {**draw(st.dictionaries(keys, anything, max_size=2)), **data}


@st.composite
def remote_sides(draw, endpoint: str):
    """The granted secrets, the remote app databag and up to two remote unit databags."""
    secrets = [
        testing.Secret(tracked_content=content, owner=None, id=secret_id)
        for secret_id, valid in SECRETS.items()
        if draw(st.integers(0, 3)) and (content := draw(mutated(valid, secret_keys)))
    ]
    app, unit = VALID.get(endpoint, ({}, {}))
    app_data = draw(mutated(app, texts.filter(bool)))
    units = draw(st.lists(mutated(unit, texts.filter(bool)), min_size=1, max_size=2))
    return secrets, app_data, dict(enumerate(units))


SETTINGS = settings(
    # FUZZ_EXAMPLES=200 searches harder; the default keeps the whole test near a minute.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)


def files_in(root: pathlib.Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_a_coordinator_cannot_make_a_worker_write_outside_its_folders(container, etc, trino):
    """Catalog files from a coordinator go under /etc/trino/certs, or nowhere."""
    app = dict(VALID["trino-worker"][0])
    app["catalogs"] = json.dumps(
        {"x": {"properties": {"connector.name": "tpch"}, "files": {"/etc/passwd": "root::0:0"}}}
    )
    coordinator = testing.Relation("trino-worker", remote_app_name="trino", remote_app_data=app)
    secrets = {testing.Secret(tracked_content=SECRETS[CLUSTER], owner=None, id=CLUSTER)}
    ctx = testing.Context(TrinoK8sCharm)

    out = ctx.run(
        ctx.on.relation_changed(coordinator, remote_unit=0),
        testing.State(
            containers={container},
            relations={coordinator},
            secrets=secrets,
            config={"charm-function": "worker"},
        ),
    )

    root = out.get_container("trino").get_filesystem(ctx)
    assert files_in(root) == []  # /etc/trino is mounted from `etc`: nothing else was written
    assert "catalog" not in {path.parts[0] for path in etc.rglob("*")}
    assert out.unit_status == testing.BlockedStatus(
        "catalog 'x' (from trino): files ['/etc/passwd'] are not in /etc/trino/certs"
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@SETTINGS
@given(
    data=st.data(),
    leader=st.booleans(),
    role=st.sampled_from(["all", "coordinator", "worker"]),
    broken=st.booleans(),
)
def test_any_remote_data_fails_no_hook_and_writes_only_the_charms_files(
    endpoint, data, leader, role, broken
):
    secrets, app_data, units_data = data.draw(remote_sides(endpoint))
    ctx = testing.Context(TrinoK8sCharm)
    if endpoint == PEERS:
        peers_data = {number + 1: bag for number, bag in units_data.items()}
        relation = testing.PeerRelation(endpoint, local_app_data=app_data, peers_data=peers_data)
        relations = {relation}
        hook = ctx.on.relation_changed(relation, remote_unit=1)
    else:
        relation = testing.Relation(
            endpoint,
            remote_app_name="remote",
            remote_app_data=app_data,
            remote_units_data=units_data,
        )
        relations = {relation, testing.PeerRelation(PEERS)}
        hook = (
            ctx.on.relation_broken(relation)
            if broken
            else ctx.on.relation_changed(relation, remote_unit=0)
        )
    state = testing.State(
        leader=leader,
        containers={testing.Container("trino", can_connect=True)},
        relations=relations,
        secrets=set(secrets),
        config={"charm-function": role},
    )
    up = workload.TrinoInfo(starting=False, version="483")
    with (
        mock.patch.object(status, "probe", return_value=up),
        mock.patch.object(restarts, "probe", return_value=up),
        mock.patch.object(metastore, "create_schema"),
    ):
        out = ctx.run(hook, state)  # a hook that raises fails the test here

    event(f"{role}: {out.unit_status.name}")
    assert out.unit_status.name in {"active", "waiting", "blocked", "maintenance"}
    root = out.get_container("trino").get_filesystem(ctx)
    outside = [path for path in files_in(root) if not path.startswith("etc/trino/")]
    assert outside == []
