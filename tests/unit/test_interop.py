"""What the charms and the image on the other side expect, as their own code reads it.

traefik-k8s's ingress v2 library validates every unit's databag (`host` required,
`ip` a valid address when given); s3 v1 requirers write `lib-version` and may be
handed a `tls-ca-chain`; older database providers send a plain login; the image's
plugin folders say which connectors exist; and without a memory limit the JVM
would size its heap from the whole node.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import pathlib
import struct

import ops
import pytest
import yaml
from conftest import read_files
from ops import testing
from providers import S3_KEYS, S3_PLAIN, catalog_files

from charm import TrinoK8sCharm

PG = "pg-primary.db.svc.cluster.local:5432"
PLAIN_LOGIN = {"username": "legacy_user", "password": "Legacy-Pa55"}


def jvm_lines(etc: pathlib.Path) -> list[str]:
    return read_files(etc)["jvm.config"].splitlines()


class TestHeapWithoutMemoryLimit:
    def test_no_limit_gives_a_bounded_heap_not_a_share_of_the_node(
        self, ctx, container, etc, trino
    ):
        ctx.run(ctx.on.config_changed(), testing.State(leader=True, containers={container}))

        lines = jvm_lines(etc)
        assert "-Xmx2048m" in lines
        assert not [line for line in lines if "RAMPercentage" in line]

    def test_a_memory_request_sizes_the_heap_by_heap_percentage(self, ctx, container, etc, trino):
        config = {"workload-memory-request": "8Gi", "heap-percentage": 75}

        ctx.run(
            ctx.on.config_changed(),
            testing.State(leader=True, containers={container}, config=config),
        )

        assert "-Xmx6144m" in jvm_lines(etc)  # 75% of 8Gi

    def test_a_memory_limit_keeps_the_heap_a_share_of_the_limit(self, ctx, container, etc, trino):
        config = {"workload-memory-limit": "8Gi", "workload-memory-request": "4Gi"}

        ctx.run(
            ctx.on.config_changed(),
            testing.State(leader=True, containers={container}, config=config),
        )

        lines = jvm_lines(etc)
        assert "-XX:MaxRAMPercentage=80" in lines
        assert "-XX:InitialRAMPercentage=80" in lines
        assert not [line for line in lines if line.startswith("-Xmx")]

    def test_a_ram_percentage_flag_without_a_limit_is_refused(self, ctx, container, etc, trino):
        config = {"additional-jvm-options": "-XX:MaxRAMPercentage=75"}

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(leader=True, containers={container}, config=config),
        )

        assert state.unit_status.name == "blocked"
        assert state.unit_status.message.startswith(
            "additional-jvm-options: -XX:MaxRAMPercentage=75 without workload-memory-limit"
        )
        assert read_files(etc) == {}


def plugin_container(etc: pathlib.Path, plugins: pathlib.Path) -> testing.Container:
    return testing.Container(
        "trino",
        can_connect=True,
        mounts={
            "etc": testing.Mount(location="/etc/trino", source=etc),
            "plugins": testing.Mount(location="/usr/lib/trino/plugin", source=plugins),
        },
    )


@pytest.fixture
def plugins(tmp_path: pathlib.Path) -> pathlib.Path:
    """The image's plugin folders: Trino 483's names, and one a custom image added."""
    root = tmp_path / "plugin"
    for folder in (
        "google-sheets", "duckdb", "thrift", "delta-lake", "tpch", "postgresql",
        "password-authenticators", "http-event-listener", "my-connector",
    ):  # fmt: skip
        (root / folder).mkdir(parents=True)
        (root / folder / "plugin.jar").write_text("")
    return root


def catalogs_config(**connectors: str) -> dict[str, str]:
    return {"catalog-config": yaml.safe_dump({n: {"connector": c} for n, c in connectors.items()})}


class TestConnectorsFromTheImage:
    def test_connectors_the_image_ships_are_accepted_by_their_trino_names(
        self, ctx, etc, plugins, trino
    ):
        config = catalogs_config(
            sheets="gsheets", duck="duckdb", thrift="trino_thrift", mine="my_connector"
        )
        delta = {
            "connector": "delta_lake",
            "properties": {"hive.metastore.uri": "thrift://h:9083"},
        }
        config["catalog-config"] += yaml.safe_dump({"delta": delta})

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(leader=True, containers={plugin_container(etc, plugins)}, config=config),
        )

        assert state.unit_status == testing.ActiveStatus()
        assert {name: c["connector.name"] for name, c in catalog_files(etc).items()} == {
            "sheets": "gsheets",
            "duck": "duckdb",
            "thrift": "trino_thrift",
            "delta": "delta_lake",
            "mine": "my_connector",
        }

    @pytest.mark.parametrize("connector", ["google_sheets", "password_authenticators", "mysql"])
    def test_names_that_are_no_connector_of_this_image_are_refused(
        self, ctx, etc, plugins, trino, connector
    ):
        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={plugin_container(etc, plugins)},
                config=catalogs_config(x=connector),
            ),
        )

        assert state.unit_status.name == "blocked"
        assert f"connector {connector!r} is not in the Trino image" in state.unit_status.message
        assert catalog_files(etc) == {}

    def test_the_fixed_list_when_the_plugin_folder_cannot_be_read_is_trino_483s(
        self, ctx, container, etc, trino
    ):
        good = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                config=catalogs_config(a="gsheets", b="duckdb", c="trino_thrift"),
            ),
        )
        bad = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True, containers={container}, config=catalogs_config(a="google_sheets")
            ),
        )

        assert good.unit_status == testing.ActiveStatus()
        assert bad.unit_status.name == "blocked"

    def test_add_catalog_checks_the_image_too(self, ctx, etc, plugins, trino, peers):
        state = testing.State(
            leader=True, containers={plugin_container(etc, plugins)}, relations={peers}
        )

        ctx.run(
            ctx.on.action("add-catalog", params={"name": "duck", "connector": "duckdb"}), state
        )
        added = dict(ctx.action_results or {})
        with pytest.raises(testing.ActionFailed) as failure:
            ctx.run(
                ctx.on.action("add-catalog", params={"name": "m", "connector": "mysql"}), state
            )

        assert added == {"catalog": "duck", "connector": "duckdb"}
        assert "connector 'mysql' is not in the Trino image" in failure.value.message

    def test_a_hook_lists_the_plugin_folder_at_most_once(
        self, ctx, etc, plugins, trino, monkeypatch
    ):
        listed = []
        original = ops.Container.list_files

        def spy(self, path, *args, **kwargs):
            listed.append(str(path))
            return original(self, path, *args, **kwargs)

        monkeypatch.setattr(ops.Container, "list_files", spy)
        config = catalogs_config(duck="duckdb")

        ctx.run(
            ctx.on.update_status(),
            testing.State(leader=True, containers={plugin_container(etc, plugins)}, config=config),
        )

        assert listed.count("/usr/lib/trino/plugin") == 1


class TestIngressWithStandbyUnits:
    def test_a_standby_points_the_ingress_at_the_serving_coordinator(self, ctx, container, trino):
        """traefik drops every route of the app when one unit has no valid `host`."""
        leader = "trino-k8s/0"
        peers = testing.PeerRelation("trino-peers", local_app_data={"leader": json.dumps(leader)})
        relation = testing.Relation(
            "ingress",
            remote_app_name="traefik",
            local_unit_data={"host": json.dumps("old"), "ip": json.dumps("10.1.1.1")},
        )
        standby = testing.Context(TrinoK8sCharm, unit_id=1)

        state = standby.run(
            standby.on.relation_changed(relation),
            testing.State(containers={container}, relations={relation, peers}),
        )

        assert state.unit_status.message.startswith("standby:")
        data = state.get_relation(relation.id).local_unit_data
        model = state.model.name
        # What traefik's IngressRequirerUnitData accepts: host a string, ip absent or an IP.
        assert (
            json.loads(data["host"])
            == f"trino-k8s-0.trino-k8s-endpoints.{model}.svc.cluster.local"
        )
        assert "ip" not in data or ipaddress.ip_address(json.loads(data["ip"]))

    def test_the_serving_unit_keeps_its_own_host_and_ip(self, ctx, container, trino, peers):
        relation = testing.Relation("ingress", remote_app_name="traefik")

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(leader=True, containers={container}, relations={relation, peers}),
        )

        data = state.get_relation(relation.id).local_unit_data
        model = state.model.name
        assert (
            json.loads(data["host"])
            == f"trino-k8s-0.trino-k8s-endpoints.{model}.svc.cluster.local"
        )
        assert ipaddress.ip_address(json.loads(data["ip"]))


class TestS3:
    def test_the_request_carries_the_lib_version_v1_providers_expect(
        self, ctx, container, trino, peers
    ):
        s3 = testing.Relation("s3-credentials", remote_app_name="s3-integrator")

        state = ctx.run(
            ctx.on.relation_created(s3),
            testing.State(leader=True, containers={container}, relations={s3, peers}),
        )

        data = state.get_relation(s3.id).local_app_data
        assert data["lib-version"] == "1.0"
        assert json.loads(data["requested-secrets"]) == ["access-key", "secret-key"]
        assert data["bucket"] == "trino-k8s"


OTHER_CA = (pathlib.Path(__file__).parent / "data" / "other-ca.pem").read_text()
TRUST_FLAGS = [
    "-Djavax.net.ssl.trustStore=/etc/trino/certs/jvm-truststore.jks",
    "-Djavax.net.ssl.trustStoreType=JKS",
    "-Djavax.net.ssl.trustStorePassword=changeit",
]


def jks_certificates(data: bytes) -> list[bytes]:
    """The DER certificates of a JKS truststore, checking its format and integrity."""
    magic, version, count = struct.unpack(">III", data[:12])
    assert (magic, version) == (0xFEEDFEED, 2)
    signed = "changeit".encode("utf-16-be") + b"Mighty Aphrodite" + data[:-20]
    assert hashlib.sha1(signed).digest() == data[-20:]  # noqa: S324  (JKS says SHA-1)
    offset, found = 12, []
    for _ in range(count):
        (tag,) = struct.unpack(">I", data[offset : offset + 4])
        assert tag == 2  # a trusted certificate entry
        (alias,) = struct.unpack(">H", data[offset + 4 : offset + 6])
        offset += 6 + alias + 8
        (kind,) = struct.unpack(">H", data[offset : offset + 2])
        assert data[offset + 2 : offset + 2 + kind] == b"X.509"
        offset += 2 + kind
        (size,) = struct.unpack(">I", data[offset : offset + 4])
        found.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    assert offset == len(data) - 20
    return found


def der(pem: str) -> bytes:
    return base64.b64decode("".join(pem.strip().splitlines()[1:-1]))


def lakehouse_with_s3(container, peers, **s3_data: str) -> tuple[testing.State, testing.Relation]:
    user = testing.Secret(tracked_content={"username": "u", "password": "p"}, owner=None)
    meta = testing.Relation(
        "metastore",
        remote_app_name="metastore-db",
        remote_app_data={"database": "m", "endpoints": PG, "secret-user": user.id},
    )
    data = {**S3_PLAIN, **S3_KEYS, "endpoint": "https://minio.example:9000", **s3_data}
    s3 = testing.Relation("s3-credentials", remote_app_name="minio", remote_app_data=data)
    state = testing.State(
        leader=True, containers={container}, relations={meta, s3, peers}, secrets={user}
    )
    return state, s3


class TestS3EndpointWithItsOwnCa:
    @pytest.mark.parametrize(
        "chain",
        [json.dumps([OTHER_CA]), json.dumps([base64.b64encode(OTHER_CA.encode()).decode()])],
        ids=["pem", "base64"],
    )
    def test_the_jvm_trusts_the_providers_ca_and_the_systems(
        self, ctx, container, etc, trino, peers, schema_calls, chain
    ):
        state, s3 = lakehouse_with_s3(container, peers, **{"tls-ca-chain": chain})

        after = ctx.run(ctx.on.relation_changed(s3), state)

        assert after.unit_status == testing.ActiveStatus()
        assert jvm_lines(etc)[-3:] == TRUST_FLAGS
        store = (etc / "certs" / "jvm-truststore.jks").read_bytes()
        trusted = jks_certificates(store)
        assert der(OTHER_CA) in trusted
        assert len(trusted) > 1  # the system's CAs stay trusted
        assert (etc / "certs" / "jvm-truststore.jks").stat().st_mode & 0o777 == 0o644

    def test_without_a_system_bundle_the_providers_ca_is_still_trusted(
        self, ctx, container, etc, trino, peers, schema_calls, monkeypatch
    ):
        import ssl  # noqa: PLC0415

        nowhere = ssl.DefaultVerifyPaths(None, None, "", "/nonexistent/ca.pem", "", "")
        monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: nowhere)
        state, s3 = lakehouse_with_s3(container, peers, **{"tls-ca-chain": json.dumps([OTHER_CA])})

        ctx.run(ctx.on.relation_changed(s3), state)

        store = (etc / "certs" / "jvm-truststore.jks").read_bytes()
        assert jks_certificates(store) == [der(OTHER_CA)]

    def test_the_same_chain_rewrites_and_restarts_nothing(
        self, ctx, container, etc, trino, peers, schema_calls, pebble_calls
    ):
        state, s3 = lakehouse_with_s3(container, peers, **{"tls-ca-chain": json.dumps([OTHER_CA])})
        state = ctx.run(ctx.on.relation_changed(s3), state)
        before = {p: p.stat().st_mtime_ns for p in etc.rglob("*") if p.is_file()}
        pebble_calls.restarts.clear()

        ctx.run(ctx.on.update_status(), state)

        assert {p: p.stat().st_mtime_ns for p in etc.rglob("*") if p.is_file()} == before
        assert pebble_calls.restarts == []

    def test_without_a_chain_the_jvm_keeps_its_own_truststore(
        self, ctx, container, etc, trino, peers, schema_calls
    ):
        state, s3 = lakehouse_with_s3(container, peers)

        ctx.run(ctx.on.relation_changed(s3), state)

        assert "lakehouse" in catalog_files(etc)
        assert not [line for line in jvm_lines(etc) if "trustStore" in line]
        assert not (etc / "certs" / "jvm-truststore.jks").exists()

    def test_a_chain_without_a_certificate_waits_naming_it(
        self, ctx, container, etc, trino, peers, schema_calls
    ):
        state, s3 = lakehouse_with_s3(container, peers, **{"tls-ca-chain": '["not a cert"]'})

        after = ctx.run(ctx.on.relation_changed(s3), state)

        assert after.unit_status == testing.WaitingStatus(
            "s3-credentials relation with minio: its tls-ca-chain holds no PEM certificate; "
            "fix it on minio (`juju config minio tls-ca-chain=...`)"
        )
        assert catalog_files(etc) == {}

    def test_a_worker_trusts_the_ca_its_coordinator_hands_over(self, container, etc, trino):
        secret = testing.Secret({"shared-secret": "c2hhcmVk", "catalog-credentials": "{}"})
        catalogs = {
            "lakehouse": {
                "properties": {
                    "connector.name": "iceberg",
                    "iceberg.catalog.type": "rest",
                    "iceberg.rest-catalog.uri": "https://rest.example",
                },
                "files": {"/etc/trino/certs/lakehouse-jvm-ca.pem": OTHER_CA},
            }
        }
        coordinator = testing.Relation(
            "trino-worker",
            remote_app_name="trino",
            remote_app_data={
                "discovery-uri": json.dumps("http://trino-0.trino-endpoints.m.svc:8080"),
                "environment": json.dumps("m"),
                "catalogs": json.dumps(catalogs),
                "settings": "{}",
                "secret-id": json.dumps(secret.id),
            },
        )
        worker = testing.Context(TrinoK8sCharm, app_name="trino-worker")

        worker.run(
            worker.on.relation_changed(coordinator),
            testing.State(
                containers={container},
                relations={coordinator},
                secrets={secret},
                config={"charm-function": "worker"},
            ),
        )

        assert jvm_lines(etc)[-3:] == TRUST_FLAGS
        assert der(OTHER_CA) in jks_certificates(
            (etc / "certs" / "jvm-truststore.jks").read_bytes()
        )


class TestPlainDatabaseLogin:
    def test_a_provider_that_sends_username_and_password_makes_a_catalog(
        self, ctx, container, etc, trino, peers
    ):
        relation = testing.Relation(
            "postgresql",
            remote_app_name="legacy-db",
            remote_app_data={"database": "legacy-db", "endpoints": PG, **PLAIN_LOGIN},
        )

        state = ctx.run(
            ctx.on.relation_changed(relation),
            testing.State(leader=True, containers={container}, relations={relation, peers}),
        )

        assert catalog_files(etc)["legacy_db"] == {
            "connector.name": "postgresql",
            "connection-url": f"jdbc:postgresql://{PG}/legacy-db",
            "connection-user": PLAIN_LOGIN["username"],
            "connection-password": PLAIN_LOGIN["password"],
        }
        assert state.unit_status == testing.ActiveStatus()
        peer_data = json.dumps(dict(state.get_relation(peers.id).local_app_data))
        assert PLAIN_LOGIN["password"] not in peer_data

    def test_a_plain_login_metastore_is_bootstrapped_with_it(
        self, ctx, container, etc, trino, peers, schema_calls
    ):
        meta = testing.Relation(
            "metastore",
            remote_app_name="legacy-db",
            remote_app_data={"database": "trino-k8s-metastore", "endpoints": PG, **PLAIN_LOGIN},
        )
        s3 = testing.Relation(
            "s3-credentials",
            remote_app_name="s3-integrator",
            remote_app_data={**S3_PLAIN, **S3_KEYS},
        )

        ctx.run(
            ctx.on.relation_changed(meta),
            testing.State(leader=True, containers={container}, relations={meta, s3, peers}),
        )

        assert schema_calls == [("trino-k8s-metastore", *PLAIN_LOGIN.values())]
        lake = catalog_files(etc)["lakehouse"]
        assert lake["iceberg.jdbc-catalog.connection-user"] == PLAIN_LOGIN["username"]
        assert lake["iceberg.jdbc-catalog.connection-password"] == PLAIN_LOGIN["password"]
