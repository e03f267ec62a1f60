"""The pure Trino model: config checks, JVM flags, rendering, the node plan."""

from __future__ import annotations

import json
import re

import pytest

from core import jvm, sizes, yamltext
from core.config import CharmConfig, ConfigError, Role
from core.plan import CHARM_USER, Cluster, NodeInputs, node_environment, node_id, plan_node
from core.render import properties_value


def problems(**options: object) -> dict[str, str]:
    """The options a config refuses, with their messages."""
    try:
        CharmConfig(**options)  # type: ignore[arg-type]
    except ConfigError as error:
        return {problem.option: problem.message for problem in error.problems}
    return {}


def parse_properties_value(escaped: str) -> str:
    """Undo Java's .properties escapes, as java.util.Properties.load does."""
    out, chars = [], iter(escaped)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        nxt = next(chars)
        if nxt == "u":
            out.append(chr(int("".join(next(chars) for _ in range(4)), 16)))
        else:
            out.append({"n": "\n", "r": "\r", "t": "\t", "f": "\f"}.get(nxt, nxt))
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


class TestSizes:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("20GB", 20 * 2**30), ("1.5MB", int(1.5 * 2**20)), ("512B", 512), ("2TB", 2 * 2**40)],
    )
    def test_trino_sizes(self, text: str, expected: int):
        assert sizes.trino_size(text) == expected

    @pytest.mark.parametrize("text", ["20gb", "20", "GB", "-1GB", "20 GB", "1e3GB"])
    def test_trino_refuses_these_sizes(self, text: str):
        assert sizes.trino_size(text) is None

    @pytest.mark.parametrize(
        ("text", "expected"), [("8Gi", 8 * 2**30), ("500m", 0.5), ("2", 2), ("1G", 1e9)]
    )
    def test_kubernetes_quantities(self, text: str, expected: float):
        assert sizes.k8s_quantity(text) == expected

    def test_human_sizes_are_readable(self):
        assert sizes.human(5.6 * 2**30) == "5.6GB"
        assert sizes.human(100) == "100B"


class TestJvmFlags:
    def test_recommended_flags_with_heap_from_heap_percentage(self):
        flags = jvm.flags(75, "", memory_limit=8 * 2**30)
        assert flags[0] == "-server"
        assert "-XX:MaxRAMPercentage=75" in flags
        assert "-XX:InitialRAMPercentage=75" in flags
        assert not any(flag.startswith("-Xmx") for flag in flags)
        assert set(jvm.RECOMMENDED_FLAGS) <= set(flags)

    def test_an_operator_flag_replaces_the_default_of_the_same_name_in_place(self):
        default = jvm.flags(80, "")
        flags = jvm.flags(80, "-XX:ReservedCodeCacheSize=1G -XX:+OmitStackTraceInFastThrow -Dx=1")
        assert "-XX:ReservedCodeCacheSize=512M" not in flags
        assert "-XX:-OmitStackTraceInFastThrow" not in flags
        index = default.index("-XX:ReservedCodeCacheSize=512M")
        assert flags[index] == "-XX:ReservedCodeCacheSize=1G"
        assert flags[-1] == "-Dx=1"
        assert len(flags) == len(default) + 1

    def test_the_last_of_two_operator_flags_wins(self):
        flags = jvm.flags(80, "-Xmx4g -Xmx8g")
        assert [flag for flag in flags if flag.startswith("-Xmx")] == ["-Xmx8g"]

    def test_heap_follows_the_limit_unless_xmx_fixes_it(self):
        limit = 10 * 2**30
        assert jvm.heap_bytes(jvm.flags(80, "", limit), limit) == 8 * 2**30
        assert jvm.heap_bytes(jvm.flags(80, "-Xmx2g", limit), limit) == 2 * 2**30
        assert jvm.heap_bytes(jvm.flags(80, "-XX:MaxRAMPercentage=50", 2**30), 2**30) == 2**29

    def test_without_a_limit_the_heap_is_a_share_of_the_request_or_2g(self):
        assert jvm.heap_bytes(jvm.flags(80, "", None, 8 * 2**30), None) == 6553 * 2**20
        assert jvm.heap_bytes(jvm.flags(80, ""), None) == jvm.DEFAULT_HEAP == 2 * 2**30
        assert not any("RAMPercentage" in flag for flag in jvm.flags(80, ""))

    @pytest.mark.parametrize(
        "flag", ["Xmx4g", "-Xmx4q", "-XX:MaxRAMPercentage=abc", "-XX:MaxRAMPercentage=120"]
    )
    def test_flags_the_jvm_would_refuse(self, flag: str):
        assert jvm.flag_problem(flag)


class TestConfig:
    def test_defaults_are_valid(self):
        config = CharmConfig()
        assert config.role is Role.ALL
        assert config.resources == {}

    @pytest.mark.parametrize(
        ("options", "option"),
        [
            ({"charm_function": "boss"}, "charm-function"),
            ({"log_level": "verbose"}, "log-level"),
            ({"heap_percentage": 95}, "heap-percentage"),
            ({"heap_percentage": 49}, "heap-percentage"),
            ({"additional_jvm_options": "Xmx4g"}, "additional-jvm-options"),
            ({"query_max_memory": "20gb"}, "query-max-memory"),
            ({"query_max_memory_per_node": "lots"}, "query-max-memory-per-node"),
            ({"query_max_memory_per_node": "0%"}, "query-max-memory-per-node"),
            ({"graceful_shutdown_period": "2 minutes"}, "graceful-shutdown-period"),
            ({"workload_memory_limit": "8GB"}, "workload-memory-limit"),
            ({"workload_cpu_limit": "two"}, "workload-cpu-limit"),
            ({"workload_memory_request": "-1Gi"}, "workload-memory-request"),
            ({"workload_cpu_request": "0.5 cores"}, "workload-cpu-request"),
        ],
    )
    def test_each_bad_value_is_refused_by_option_name(self, options: dict, option: str):
        assert list(problems(**options)) == [option]

    def test_a_request_above_its_limit_is_refused(self):
        found = problems(workload_memory_limit="4Gi", workload_memory_request="8Gi")
        assert "above workload-memory-limit=4Gi" in found["workload-memory-request"]

    def test_resources_keep_only_what_is_set(self):
        config = CharmConfig(workload_memory_limit="8Gi", workload_cpu_request="2")
        assert config.resources == {"limits": {"memory": "8Gi"}, "requests": {"cpu": "2"}}

    def test_per_node_memory_that_fits_the_heap_is_accepted(self):
        # 10Gi limit, 80% heap = 8GB; headroom 30% = 2.4GB; 5.6GB left for queries.
        assert not problems(workload_memory_limit="10Gi", query_max_memory_per_node="5GB")
        assert not problems(query_max_memory_per_node="70%")

    def test_per_node_memory_above_the_heap_names_the_numbers(self):
        message = problems(workload_memory_limit="10Gi", query_max_memory_per_node="6GB")[
            "query-max-memory-per-node"
        ]
        assert "6GB" in message
        assert "heap 8GB" in message
        assert "80% of workload-memory-limit 10Gi" in message
        assert "at most 5.6GB" in message

    def test_per_node_share_above_what_the_headroom_leaves_is_refused(self):
        message = problems(query_max_memory_per_node="80%")["query-max-memory-per-node"]
        assert "at most 70%" in message

    def test_an_xmx_flag_decides_the_heap_for_the_check(self):
        found = problems(
            workload_memory_limit="64Gi",
            additional_jvm_options="-Xmx4g",
            query_max_memory_per_node="3GB",
        )
        assert "set by -Xmx4g" in found["query-max-memory-per-node"]

    def test_without_a_limit_per_node_memory_must_fit_the_default_heap(self):
        message = problems(query_max_memory_per_node="500GB")["query-max-memory-per-node"]
        assert "(the default heap without workload-memory-limit)" in message
        assert not problems(query_max_memory_per_node="1GB")


class TestRendering:
    @pytest.mark.parametrize(
        "value",
        ["plain", "a=b:c", "back\\slash", "two\nlines", "  leading", "é ünïcode 😀", "tab\tx"],
    )
    def test_properties_values_survive_a_java_round_trip(self, value: str):
        escaped = properties_value(value)
        assert "\n" not in escaped
        assert escaped.isascii()
        assert parse_properties_value(escaped) == value

    def test_booleans_are_spelled_the_trino_way(self):
        assert properties_value(True) == "true"
        assert properties_value(False) == "false"


class TestPlan:
    def inputs(self, **options: object) -> NodeInputs:
        cluster = Cluster(node_environment("Prod-Lake"), "http://trino-0.x:8080", "s3cret")
        config = CharmConfig(**options)  # type: ignore[arg-type]
        return NodeInputs(config, "Prod-Lake", "trino/3", cluster=cluster)

    def test_node_names_are_ones_trino_accepts(self):
        assert node_environment("prod-lake") == "prod_lake"
        assert node_environment("-x") == "juju_x"
        assert node_id("trino-worker/12") == "trino-worker-12"

    def test_a_single_node_plan_holds_every_file(self):
        plan = plan_node(self.inputs())
        assert plan.waiting is None
        assert set(plan.files) == {
            "/etc/trino/node.properties",
            "/etc/trino/jvm.config",
            "/etc/trino/config.properties",
            "/etc/trino/log.properties",
            "/etc/trino/access-control.properties",
            "/etc/trino/rules.json",
        }
        assert "node.environment=prod_lake\n" in plan.files["/etc/trino/node.properties"].content
        assert "node.id=trino-3\n" in plan.files["/etc/trino/node.properties"].content

    def test_only_the_charm_user_writes_system_information_and_metrics_user_reads(self):
        rules = json.loads(plan_node(self.inputs()).files["/etc/trino/rules.json"].content)
        # First match wins: the charm's own rule first, then the read-only metrics user.
        assert rules["system_information"] == [
            {"user": CHARM_USER, "allow": ["read", "write"]},
            {"user": "trino-metrics", "allow": ["read"]},
        ]

    @pytest.mark.parametrize(
        ("user", "access"),
        [(CHARM_USER, "none"), ("trino-metrics", "none"), ("alice", "all"), ("superset", "all")],
    )
    def test_internal_users_get_no_data_and_everyone_else_keeps_it(self, user, access):
        rules = json.loads(plan_node(self.inputs()).files["/etc/trino/rules.json"].content)
        # Trino's file access control: the first catalog rule whose patterns match wins.
        first = next(
            rule
            for rule in rules["catalogs"]
            if re.fullmatch(rule.get("user", ".*"), user)
            and re.fullmatch(rule.get("catalog", ".*"), "sales")
        )
        assert first["allow"] == access

    def test_a_worker_waits_and_writes_nothing(self):
        plan = plan_node(
            NodeInputs(CharmConfig(charm_function="worker"), "Prod-Lake", "trino-worker/3")
        )
        assert plan.waiting
        assert "coordinator" in plan.waiting
        assert plan.files == {}


def test_operator_yaml_is_read_as_plain_data_only():
    assert yamltext.load("tpch:\n  connector: tpch\n") == {"tpch": {"connector": "tpch"}}
    with pytest.raises(yamltext.YAMLError):
        yamltext.load("!!python/object/apply:os.system ['true']")
