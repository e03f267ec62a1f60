"""Catalogs from config and actions, their secrets, and what never changes on refusal."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import ops
import pytest
import yaml
from conftest import cluster_secrets, properties, read_files
from ops import testing

DB_URL = "jdbc:postgresql://db.example:5432/sales"
CREDENTIALS = {"username": "sales_reader", "password": "s3cr3t-Pa55"}


def secret(content: dict[str, str] | None = None, **kwargs) -> testing.Secret:
    return testing.Secret(tracked_content=content or dict(CREDENTIALS), **kwargs)


def sales(secret_id: str, **extra) -> dict:
    return {
        "connector": "postgresql",
        "properties": {"connection-url": DB_URL},
        "secret": secret_id,
        "secret-properties": {"connection-user": "username", "connection-password": "password"},
        **extra,
    }


def catalog_config(**catalogs) -> dict[str, str]:
    return {"catalog-config": yaml.safe_dump(catalogs)}


def catalog_files(etc: pathlib.Path) -> dict[str, dict[str, str]]:
    return {
        name.removeprefix("catalog/").removesuffix(".properties"): properties(text)
        for name, text in read_files(etc).items()
        if name.startswith("catalog/")
    }


def mtimes(etc: pathlib.Path) -> dict[str, int]:
    return {str(path): path.stat().st_mtime_ns for path in etc.rglob("*") if path.is_file()}


@pytest.fixture
def peers() -> testing.PeerRelation:
    return testing.PeerRelation("trino-peers")


@pytest.fixture
def with_sales(ctx, container, peers, trino, pebble_calls):
    """A running node with the `sales` catalog (credentials from a secret) and tpch."""
    creds = secret()
    config = catalog_config(sales=sales(creds.id), tpch={"connector": "tpch"})
    state = ctx.run(
        ctx.on.config_changed(),
        testing.State(
            leader=True, containers={container}, relations={peers}, secrets={creds}, config=config
        ),
    )
    pebble_calls.replans = 0
    return state, creds


class TestConfigCatalogs:
    def test_catalogs_are_written_with_credentials_from_the_secret(self, with_sales, etc):
        state, _ = with_sales

        assert catalog_files(etc) == {
            "sales": {
                "connector.name": "postgresql",
                "connection-url": DB_URL,
                "connection-user": "sales_reader",
                "connection-password": "s3cr3t-Pa55",
            },
            "tpch": {"connector.name": "tpch"},
        }
        for name in ("sales", "tpch"):
            assert (etc / "catalog" / f"{name}.properties").stat().st_mode & 0o777 == 0o600
        assert state.unit_status == testing.ActiveStatus()

    def test_credentials_are_never_in_the_plan_status_or_logs(self, ctx, with_sales):
        state, _ = with_sales

        plan = state.get_container("trino").plan.to_yaml()
        logs = "\n".join(log.message for log in ctx.juju_log)
        for value in CREDENTIALS.values():
            assert value not in plan
            assert value not in state.unit_status.message
            assert value not in logs

    def test_a_rotated_password_is_rewritten_and_restarts_once(
        self, ctx, with_sales, etc, pebble_calls
    ):
        state, creds = with_sales
        rotated = dataclasses.replace(
            creds, latest_content={**CREDENTIALS, "password": "n3w-Pa55"}
        )

        ctx.run(
            ctx.on.secret_changed(rotated),
            dataclasses.replace(state, secrets={rotated, *cluster_secrets(state)}),
        )

        assert catalog_files(etc)["sales"]["connection-password"] == "n3w-Pa55"
        assert pebble_calls.restarts == [("trino",)]

    def test_a_revoked_secret_blocks_and_keeps_the_last_good_files(
        self, ctx, with_sales, etc, pebble_calls
    ):
        state, creds = with_sales
        before = mtimes(etc)

        after = ctx.run(
            ctx.on.update_status(), dataclasses.replace(state, secrets=cluster_secrets(state))
        )

        assert isinstance(after.unit_status, testing.BlockedStatus)
        message = after.unit_status.message
        assert message.startswith("catalog 'sales' (config): secret ")
        assert f"juju grant-secret {creds.id} trino-k8s" in message
        assert mtimes(etc) == before
        assert pebble_calls.restarts == []

    def test_a_secret_without_the_key_blocks_naming_the_key(
        self, ctx, with_sales, etc, pebble_calls
    ):
        state, creds = with_sales
        before = read_files(etc)
        broken = dataclasses.replace(creds, latest_content={"username": "x"})

        after = ctx.run(
            ctx.on.secret_changed(broken),
            dataclasses.replace(state, secrets={broken, *cluster_secrets(state)}),
        )

        assert after.unit_status == testing.BlockedStatus(
            f"catalog 'sales' (config): secret {creds.id} has no key password; it has username"
        )
        assert read_files(etc) == before
        assert pebble_calls.restarts == []

    @pytest.mark.parametrize(
        ("catalogs", "expected"),
        [
            ({"Sales": {"connector": "tpch"}}, "catalog 'Sales' (config): name 'Sales' is not"),
            ({"system": {"connector": "tpch"}}, "catalog 'system' (config): name 'system' is not"),
            ({"x": {"connector": "oracle9"}}, "catalog 'x' (config): connector 'oracle9' is not"),
            ({"x": {"connector": "postgresql"}}, "the postgresql connector needs connection-url"),
            (
                {"x": {"connector": "iceberg", "properties": {"iceberg.catalog.type": "jdbc"}}},
                "needs iceberg.jdbc-catalog.connection-url, iceberg.jdbc-catalog.catalog-name",
            ),
            (
                {"x": {"connector": "tpch", "properties": {"bad key": "1"}}},
                "property names ['bad key'] are not valid",
            ),
            (
                {"x": {"connector": "tpch", "secret-properties": {"a": "b"}}},
                "secret-properties need a secret",
            ),
            ({"x": {"connector": "tpch", "colour": "red"}}, "catalog-config: catalog 'x' has"),
            ({"x": "tpch"}, "catalog-config: catalog 'x' must be a mapping"),
        ],
    )
    def test_an_invalid_catalog_is_refused_by_name_and_nothing_changes(
        self, ctx, with_sales, etc, pebble_calls, catalogs, expected
    ):
        state, creds = with_sales
        before = read_files(etc)
        config = catalog_config(sales=sales(creds.id), **catalogs)

        after = ctx.run(ctx.on.config_changed(), dataclasses.replace(state, config=config))

        assert isinstance(after.unit_status, testing.BlockedStatus)
        assert expected in after.unit_status.message
        assert read_files(etc) == before
        assert pebble_calls.restarts == []

    def test_catalog_config_that_is_not_yaml_is_refused(self, ctx, with_sales, etc):
        state, _ = with_sales
        before = read_files(etc)

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(state, config={"catalog-config": "sales: [unclosed"}),
        )

        assert after.unit_status.message.startswith("catalog-config: ")
        assert read_files(etc) == before

    def test_other_options_still_apply_while_a_catalog_is_refused(self, ctx, with_sales, etc):
        state, _ = with_sales
        config = {**catalog_config(x={"connector": "nope"}), "log-level": "debug"}

        after = ctx.run(ctx.on.config_changed(), dataclasses.replace(state, config=config))

        assert properties(read_files(etc)["log.properties"]) == {"io.trino": "DEBUG"}
        assert set(catalog_files(etc)) == {"sales", "tpch"}  # the last good set
        assert isinstance(after.unit_status, testing.BlockedStatus)

    def test_removing_a_catalog_from_config_removes_its_file(
        self, ctx, with_sales, etc, pebble_calls
    ):
        state, creds = with_sales

        ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(state, config=catalog_config(sales=sales(creds.id))),
        )

        assert set(catalog_files(etc)) == {"sales"}
        assert pebble_calls.restarts == [("trino",)]

    def test_the_same_catalogs_written_differently_restart_nothing(
        self, ctx, with_sales, etc, pebble_calls
    ):
        state, creds = with_sales
        before = mtimes(etc)
        same = {
            "catalog-config": json.dumps({"tpch": {"connector": "tpch"}, "sales": sales(creds.id)})
        }

        ctx.run(ctx.on.config_changed(), dataclasses.replace(state, config=same))

        assert mtimes(etc) == before
        assert pebble_calls.restarts == []


def added(state: testing.State) -> dict:
    relation = state.get_relations("trino-peers")[0]
    return json.loads(relation.local_app_data.get("catalogs", "{}"))


class TestCatalogActions:
    def test_add_catalog_writes_the_file_and_stores_only_a_reference(
        self, ctx, container, peers, etc, trino, pebble_calls
    ):
        creds = secret()
        state = testing.State(
            leader=True, containers={container}, relations={peers}, secrets={creds}
        )

        after = ctx.run(
            ctx.on.action(
                "add-catalog",
                params={
                    "name": "sales",
                    "connector": "postgresql",
                    # `juju run ... properties.connection-url=...` arrives nested like this:
                    "properties": {"connection-url": DB_URL, "postgresql": {"fetch-size": 500}},
                    "secret": creds.id,
                    "secret-properties": {"connection-password": "password"},
                },
            ),
            state,
        )

        assert ctx.action_results == {"catalog": "sales", "connector": "postgresql"}
        assert catalog_files(etc)["sales"] == {
            "connector.name": "postgresql",
            "connection-url": DB_URL,
            "postgresql.fetch-size": "500",
            "connection-password": "s3cr3t-Pa55",
        }
        stored = json.dumps(after.get_relations("trino-peers")[0].local_app_data)
        assert "s3cr3t-Pa55" not in stored
        assert added(after)["sales"]["secret"] == creds.id

    def test_add_catalog_elsewhere_than_the_leader_names_the_leader(self, ctx, container, trino):
        peers = testing.PeerRelation(
            "trino-peers", local_app_data={"leader": json.dumps("trino-k8s/2")}
        )
        state = testing.State(containers={container}, relations={peers})

        with pytest.raises(testing.ActionFailed, match=r"run it on the leader, trino-k8s/2"):
            ctx.run(ctx.on.action("add-catalog", params={"name": "a", "connector": "tpch"}), state)

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"name": "system", "connector": "tpch"}, "name 'system' is not allowed"),
            ({"name": "a", "connector": "nope"}, "connector 'nope' is not in the Trino image"),
            ({"name": "a", "connector": "postgresql"}, "needs connection-url"),
            (
                {
                    "name": "a",
                    "connector": "tpch",
                    "secret": "secret:d0esn0tex1st00000000",
                    "secret-properties": {"x": "y"},
                },
                "does not exist or is not granted",
            ),
        ],
    )
    def test_add_catalog_refuses_before_writing_anything(
        self, ctx, container, peers, etc, trino, params, message
    ):
        state = testing.State(leader=True, containers={container}, relations={peers})

        with pytest.raises(testing.ActionFailed, match=message):
            ctx.run(ctx.on.action("add-catalog", params=params), state)

        assert catalog_files(etc) == {}

    def test_add_catalog_refuses_a_name_config_already_has(self, ctx, with_sales):
        state, _ = with_sales

        with pytest.raises(testing.ActionFailed, match="defined by both config and action"):
            ctx.run(
                ctx.on.action("add-catalog", params={"name": "tpch", "connector": "tpch"}), state
            )

    def test_a_clash_is_refused_even_while_other_options_are_invalid(
        self, ctx, container, peers, trino
    ):
        config = {**catalog_config(tpch={"connector": "tpch"}), "heap-percentage": 5}
        state = testing.State(
            leader=True, containers={container}, relations={peers}, config=config
        )

        with pytest.raises(testing.ActionFailed, match="defined by both config and action"):
            ctx.run(
                ctx.on.action("add-catalog", params={"name": "tpch", "connector": "tpch"}), state
            )

    def test_a_clash_from_config_blocks_naming_both_sources(self, ctx, container, trino, etc):
        peers = testing.PeerRelation(
            "trino-peers",
            local_app_data={"catalogs": json.dumps({"tpch": {"connector": "tpch"}})},
        )
        state = testing.State(
            leader=True,
            containers={container},
            relations={peers},
            config=catalog_config(tpch={"connector": "tpch"}),
        )

        after = ctx.run(ctx.on.config_changed(), state)

        assert after.unit_status == testing.BlockedStatus(
            "catalog 'tpch' is defined by both config and action; remove or rename one of them"
        )

    def test_remove_catalog_removes_what_the_action_added(
        self, ctx, container, peers, etc, trino, pebble_calls
    ):
        state = testing.State(leader=True, containers={container}, relations={peers})
        state = ctx.run(
            ctx.on.action("add-catalog", params={"name": "tiny", "connector": "tpch"}), state
        )
        assert set(catalog_files(etc)) == {"tiny"}

        after = ctx.run(ctx.on.action("remove-catalog", params={"name": "tiny"}), state)

        assert ctx.action_results == {"removed": "tiny"}
        assert catalog_files(etc) == {}
        assert added(after) == {}

    def test_remove_catalog_refuses_a_catalog_from_config(self, ctx, with_sales):
        state, _ = with_sales

        with pytest.raises(
            testing.ActionFailed, match="no catalog 'tpch' was added by add-catalog"
        ):
            ctx.run(ctx.on.action("remove-catalog", params={"name": "tpch"}), state)

    def test_list_catalogs_names_connectors_and_sources_but_no_credentials(self, ctx, with_sales):
        state, _ = with_sales
        state = ctx.run(
            ctx.on.action("add-catalog", params={"name": "mem", "connector": "memory"}), state
        )

        ctx.run(ctx.on.action("list-catalogs"), state)

        assert ctx.action_results is not None
        assert json.loads(ctx.action_results["catalogs"]) == [
            {"name": "mem", "connector": "memory", "source": "action"},
            {"name": "sales", "connector": "postgresql", "source": "config"},
            {"name": "tpch", "connector": "tpch", "source": "config"},
        ]
        assert ctx.action_results["count"] == 3
        assert "s3cr3t" not in json.dumps(ctx.action_results)


class TestPersistence:
    def test_action_catalogs_come_back_on_a_fresh_pod(self, ctx, peers, tmp_path, trino):
        stored = testing.PeerRelation(
            "trino-peers",
            local_app_data={"catalogs": json.dumps({"tiny": {"connector": "tpch"}})},
        )
        empty = tmp_path / "new-pod"
        empty.mkdir()
        container = testing.Container(
            "trino",
            can_connect=True,
            mounts={"etc": testing.Mount(location="/etc/trino", source=empty)},
        )

        # A unit on a new pod (its files gone): the application databag brings them back.
        ctx.run(
            ctx.on.pebble_ready(container),
            testing.State(leader=True, containers={container}, relations={stored}),
        )

        assert catalog_files(empty) == {"tiny": {"connector.name": "tpch"}}

    def test_a_new_leader_keeps_and_manages_the_catalogs(self, ctx, container, etc, trino):
        old_leader_data = {
            "catalogs": json.dumps({"tiny": {"connector": "tpch"}}),
            "leader": json.dumps("trino-k8s/1"),
        }
        peers = testing.PeerRelation("trino-peers", local_app_data=old_leader_data)
        state = testing.State(leader=True, containers={container}, relations={peers})

        state = ctx.run(ctx.on.leader_elected(), state)
        assert set(catalog_files(etc)) == {"tiny"}
        relation = state.get_relations("trino-peers")[0]
        assert json.loads(relation.local_app_data["leader"]) == "trino-k8s/0"

        ctx.run(ctx.on.action("remove-catalog", params={"name": "tiny"}), state)
        assert catalog_files(etc) == {}


def test_secret_changed_on_an_unrelated_secret_restarts_nothing(ctx, with_sales, pebble_calls):
    state, _ = with_sales
    other = testing.Secret(tracked_content={"a": "b"})

    ctx.run(
        ctx.on.secret_changed(other), dataclasses.replace(state, secrets={*state.secrets, other})
    )

    assert pebble_calls.restarts == []


def test_the_plan_never_carries_catalog_settings(with_sales):
    state, _ = with_sales
    service = state.get_container("trino").plan.services["trino"]
    assert service.environment == {}
    assert isinstance(service, ops.pebble.Service)
