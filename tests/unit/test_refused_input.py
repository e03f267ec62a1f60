"""Operator input Trino (or the JVM) would refuse at start is refused first, by name.

Each case starts from a running node, changes one input, and checks what the
operator sees: `blocked` naming the option and the fix, no file written, no
restart. Every value here was accepted before and then stopped Trino.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml
from conftest import read_files
from ops import testing

TPCH = yaml.safe_dump({"tpch": {"connector": "tpch"}})


@pytest.fixture
def running(ctx, container, trino, pebble_calls) -> testing.State:
    """A leader serving Trino with one catalog; restarts counted from here."""
    state = ctx.run(
        ctx.on.config_changed(),
        testing.State(
            leader=True,
            containers={container},
            relations={testing.PeerRelation("trino-peers")},
            config={"catalog-config": TPCH},
        ),
    )
    assert state.unit_status == testing.ActiveStatus()
    pebble_calls.restarts.clear()
    pebble_calls.replans = 0
    return state


def assert_refused(after: testing.State, option: str, before: dict, etc, pebble_calls) -> None:
    assert isinstance(after.unit_status, testing.BlockedStatus), after.unit_status
    assert after.unit_status.message.startswith(f"{option}: "), after.unit_status.message
    assert read_files(etc) == before
    assert pebble_calls.restarts == []
    assert pebble_calls.replans == 0


ARABIC_EIGHT, ARABIC_TWO = "\u0668", "\u0662"  # digits Python's \d accepts, Trino does not


class TestDigitsSizesAndJvm:
    @pytest.mark.parametrize(
        ("options", "option"),
        [
            ({"additional-jvm-options": f"-Xmx{ARABIC_EIGHT}g"}, "additional-jvm-options"),
            ({"query-max-memory": f"{ARABIC_TWO}GB"}, "query-max-memory"),
            ({"query-max-memory-per-node": f"{ARABIC_TWO}GB"}, "query-max-memory-per-node"),
            ({"graceful-shutdown-period": f"{ARABIC_TWO}m"}, "graceful-shutdown-period"),
            ({"discovery-uri": "http://h:\u0668\u0660\u0668\u0660"}, "discovery-uri"),
            ({"workload-memory-limit": f"{ARABIC_EIGHT}Gi"}, "workload-memory-limit"),
            ({"discovery-uri": "http://trino:99999"}, "discovery-uri"),
            ({"discovery-uri": "http://trino:0"}, "discovery-uri"),
            ({"additional-jvm-options": "-Xms1g -Xmx512m"}, "additional-jvm-options"),
            (
                {
                    "workload-memory-limit": "8Gi",
                    "additional-jvm-options": "-XX:MaxRAMPercentage=0.0001",
                },
                "additional-jvm-options",
            ),
            (
                {"additional-jvm-options": "-XX:ReservedCodeCacheSize=abc"},
                "additional-jvm-options",
            ),
            ({"workload-memory-limit": "1Ki"}, "workload-memory-limit"),
            (
                {"workload-memory-limit": "4Gi", "additional-jvm-options": "-Xmx8g"},
                "additional-jvm-options",
            ),
        ],
    )
    def test_values_trino_or_the_jvm_refuse_at_start_block_by_name(
        self, ctx, running, etc, pebble_calls, options, option
    ):
        before = read_files(etc)

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(running, config={"catalog-config": TPCH, **options}),
        )

        assert_refused(after, option, before, etc, pebble_calls)


class TestNamesAreMatchedWhole:
    @pytest.mark.parametrize(
        ("catalogs", "expected"),
        [
            ({"abc\n": {"connector": "tpch"}}, "catalog 'abc\\n' (config): name 'abc\\n'"),
            (
                {"x": {"connector": "tpch", "properties": {"connector.name\n": "memory"}}},
                "property names ['connector.name\\n'] are not valid",
            ),
            (
                {"x": {"connector": "tpch", "properties": {"a\n": "1"}}},
                "property names ['a\\n'] are not valid",
            ),
        ],
    )
    def test_a_trailing_newline_is_no_valid_name(
        self, ctx, running, etc, pebble_calls, catalogs, expected
    ):
        before = read_files(etc)

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(running, config={"catalog-config": yaml.safe_dump(catalogs)}),
        )

        assert isinstance(after.unit_status, testing.BlockedStatus)
        assert expected in after.unit_status.message
        assert read_files(etc) == before
        assert pebble_calls.restarts == []

    def test_a_user_name_with_a_trailing_newline_is_refused(self, ctx, container, etc, trino):
        """`alice\\n` would split password.db's `user:hash` line in two."""
        users = testing.Secret({"users": yaml.safe_dump({"alice\n": "s3cret", "bob": "hunter2"})})
        ingress = testing.Relation(
            "ingress", remote_app_data={"ingress": json.dumps({"url": "https://lake/trino"})}
        )

        after = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                relations={ingress},
                secrets={users},
                config={"user-secret-id": users.id},
            ),
        )

        assert after.unit_status == testing.BlockedStatus(
            f"user-secret-id: user 'alice\\n' in secret {users.id} is not a valid name "
            "(letters, digits, _ . @ -)"
        )
        assert "password.db" not in read_files(etc)


class TestAccessControlRules:
    @pytest.mark.parametrize(
        ("rules", "expected"),
        [
            (
                {"catalogs": [{"allow": "bogus"}]},
                "catalogs rule 1: allow must be all, read-only or none",
            ),
            (
                {"catalogs": [{"user": "(alice", "allow": "all"}]},
                "catalogs rule 1: user '(alice' is not a valid regular expression",
            ),
            ({"catalogz": []}, "unknown section 'catalogz'"),
            (
                {"tables": [{"privileges": ["SELECT"], "colour": "red"}]},
                "tables rule 1: unknown field 'colour'",
            ),
            ({"tables": [{"table": "orders"}]}, "tables rule 1: privileges is required"),
            (
                {"tables": [{"privileges": ["READ"]}]},
                "tables rule 1: privileges must be a list of SELECT, INSERT, DELETE, UPDATE, "
                "OWNERSHIP, GRANT_SELECT",
            ),
            (
                {"system_information": [{"allow": "read"}]},
                "system_information rule 1: allow must be a list of read, write",
            ),
            ({"schemas": [{"owner": "yes"}]}, "schemas rule 1: owner must be true or false"),
            (
                {"queries": [{"queryOwner": "bob", "allow": ["execute"]}]},
                "queries rule 1: a rule with queryOwner cannot allow execute",
            ),
            (
                {"impersonation": [{"original_user": "a"}]},
                "impersonation rule 1: new_user is required",
            ),
        ],
    )
    def test_rules_trino_would_not_load_block_and_keep_the_current_rules(
        self, ctx, running, etc, pebble_calls, rules, expected
    ):
        before = read_files(etc)

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                running, config={"catalog-config": TPCH, "access-control-rules": json.dumps(rules)}
            ),
        )

        assert isinstance(after.unit_status, testing.BlockedStatus)
        assert after.unit_status.message.startswith("access-control-rules: ")
        assert expected in after.unit_status.message
        assert read_files(etc) == before

    def test_rules_as_the_trino_docs_write_them_are_accepted(self, ctx, running, etc):
        rules = {
            "catalogs": [
                {"role": "admin", "catalog": "(mysql|system)", "allow": "all"},
                {"group": "finance|human_resources", "catalog": "postgres", "allow": True},
                {"user": "alice", "catalog": "postgresql", "allow": "read-only"},
            ],
            "schemas": [{"role": "admin", "schema": ".*", "owner": True}],
            "tables": [
                {
                    "catalog": "default",
                    "schema": "hr",
                    "table": "employee",
                    "privileges": ["SELECT"],
                    "filter": "user = current_user",
                    "filter_environment": {"user": "system_user"},
                    "columns": [{"name": "address", "allow": False}],
                }
            ],
            "queries": [{"queryOwner": "alice|dave", "allow": ["view"]}],
            "impersonation": [{"original_role": "admin", "new_user": ".*", "allow": True}],
            "principals": [{"principal": "(.*)", "principal_to_user": "$1", "allow": True}],
            "system_information": [{"role": "admin", "allow": ["read", "write"]}],
            "authorization": [{"original_role": "admin", "new_user": "bob", "allow": False}],
            "system_session_properties": [{"property": "resource_overcommit", "allow": True}],
            "catalog_session_properties": [{"catalog": "hive", "property": "x", "allow": True}],
            "functions": [{"schema": "system", "function": "query", "privileges": ["EXECUTE"]}],
            "procedures": [{"catalog": "delta", "procedure": "vacuum", "privileges": ["EXECUTE"]}],
        }

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                running, config={"catalog-config": TPCH, "access-control-rules": json.dumps(rules)}
            ),
        )

        assert after.unit_status == testing.ActiveStatus()
        assert json.loads(read_files(etc)["rules.json"])["procedures"] == rules["procedures"]


class TestIcebergJdbcCatalog:
    def test_a_jdbc_catalog_without_driver_or_warehouse_is_refused(
        self, ctx, running, etc, pebble_calls
    ):
        catalog = {
            "connector": "iceberg",
            "properties": {
                "iceberg.catalog.type": "jdbc",
                "iceberg.jdbc-catalog.connection-url": "jdbc:postgresql://pg:5432/meta",
                "iceberg.jdbc-catalog.catalog-name": "lake",
            },
        }
        before = read_files(etc)

        after = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(
                running, config={"catalog-config": yaml.safe_dump({"lake": catalog})}
            ),
        )

        assert after.unit_status == testing.BlockedStatus(
            "catalog 'lake' (config): the iceberg connector needs "
            "iceberg.jdbc-catalog.driver-class, iceberg.jdbc-catalog.default-warehouse-dir"
        )
        assert read_files(etc) == before
        assert pebble_calls.restarts == []
