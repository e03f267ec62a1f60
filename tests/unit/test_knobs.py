"""Operator knobs: config overrides, resource groups and session property rules."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import FakeTrino, PebbleCalls, properties, read_files
from ops import testing
from test_cluster import publish, worker_state
from test_rolling import app_data, peers_with, set_peers, unit_data, with_config

import charm
from core import knobs, rolling
from core.config import CharmConfig, ConfigError
from core.plan import Cluster, NodeInputs, plan_node

RESOURCE_GROUPS = {
    "rootGroups": [
        {
            "name": "global",
            "softMemoryLimit": "80%",
            "hardConcurrencyLimit": 10,
            "maxQueued": 100,
            "subGroups": [
                {
                    "name": "etl",
                    "softMemoryLimit": "1GB",
                    "hardConcurrencyLimit": 1,
                    "maxQueued": 10,
                    "schedulingPolicy": "fair",
                },
                {"name": "${USER}", "softMemoryLimit": "10%", "maxRunning": 2, "maxQueued": 5},
            ],
        }
    ],
    "selectors": [
        {"user": "etl-.*", "group": "global.etl"},
        {"source": "(?<tool>superset)", "group": "global.${USER}"},
    ],
    "cpuQuotaPeriod": "1h",
}
SESSION_RULES = [
    {"user": "bob", "sessionProperties": {"query_max_run_time": "5m"}},
    {"group": "global\\.etl", "clientTags": ["nightly"], "sessionProperties": {}},
]


@pytest.fixture
def running(ctx, container, trino, pebble_calls) -> testing.State:
    """A leader alone, Trino started on its first files and serving."""
    state = ctx.run(
        ctx.on.pebble_ready(container),
        testing.State(leader=True, containers={container}, relations={peers_with()}),
    )
    served = ctx.run(ctx.on.update_status(), state)
    pebble_calls.restarts.clear()
    return served


def configure(ctx, state: testing.State, **options: str) -> testing.State:
    """config-changed with these options, then Trino serves again (the restart is done)."""
    return ctx.run(ctx.on.config_changed(), with_config(state, **options))


class TestOverrides:
    def test_overrides_reach_config_properties_and_restart_trino(
        self, ctx, running, etc, pebble_calls: PebbleCalls
    ):
        text = "# longer queries\nquery.max-run-time = 42m\n\nquery.max-history=500\n"

        state = configure(ctx, running, **{"config-overrides": text})

        config = properties(read_files(etc)["config.properties"])
        assert config["query.max-run-time"] == "42m"
        assert config["query.max-history"] == "500"
        assert config["discovery.uri"] == "http://localhost:8080"  # the charm's own stay
        assert pebble_calls.restarts == [("trino",)]
        assert state.unit_status == testing.ActiveStatus()

    @pytest.mark.parametrize(
        ("line", "reason"),
        [
            ("discovery.uri=http://x:8080", "discovery: use discovery-uri"),
            ("http-server.http.port=9090", "the ports"),
            ("http-server.https.enabled=true", "HTTPS: relate to a certificates provider"),
            ("internal-communication.shared-secret=x", "the cluster's shared secret"),
            ("http-server.authentication.type=PASSWORD", "authentication: use user-secret-id"),
            ("http-server.process-forwarded=true", "forwarded headers: the ingress relation"),
            ("management.user=admin", "management.user: the metrics user"),
            ("access-control.config-files=/x", "access control: use access-control-rules"),
            ("catalog.management=dynamic", "catalog management: use catalog-config"),
            ("coordinator=false", "the role: use charm-function"),
            ("retry-policy=TASK", "use retry-policy"),
            ("exchange-manager.name=filesystem", "the exchange manager: the exchange-s3"),
            ("query.max-memory=1GB", "use query-max-memory"),
            ("shutdown.grace-period=1s", "use graceful-shutdown-period"),
            ("resource-groups.configuration-manager=file", "use resource-groups"),
        ],
    )
    def test_a_property_the_charm_owns_is_refused_by_name(
        self, ctx, running, etc, pebble_calls, line, reason
    ):
        before = read_files(etc)

        state = configure(ctx, running, **{"config-overrides": f"query.max-history=5\n{line}"})

        key = line.split("=")[0]
        assert isinstance(state.unit_status, testing.BlockedStatus)
        message = state.unit_status.message
        assert message.startswith(f"config-overrides: line 2: {key} is the charm's ("), message
        assert reason in message
        assert read_files(etc) == before
        assert pebble_calls.restarts == []

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("query.max-history 5", "line 1 'query.max-history 5' is not a property=value line"),
            ("a=1\na=2", "line 2: a is given twice"),
            (
                "x.password=${ENV:SECRET}",
                "line 1: x.password holds ${...}, which Trino would replace",
            ),
            ("=5", "line 1 '=5' is not a property=value line"),
        ],
    )
    def test_a_line_that_is_not_a_property_is_refused(
        self, ctx, running, etc, pebble_calls, text, expected
    ):
        before = read_files(etc)

        state = configure(ctx, running, **{"config-overrides": text})

        assert state.unit_status == testing.BlockedStatus(f"config-overrides: {expected}")
        assert read_files(etc) == before
        assert pebble_calls.restarts == []

    def test_a_worker_application_has_its_own_overrides(self):
        config = CharmConfig(charm_function="worker", config_overrides="task.concurrency=4")
        cluster = Cluster("m", "http://trino-0:8080", "secret")

        plan = plan_node(NodeInputs(config, "m", "trino-worker/0", cluster=cluster))

        written = properties(plan.files["/etc/trino/config.properties"].data.decode())
        assert written["task.concurrency"] == "4"
        assert written["coordinator"] == "false"

    def test_values_are_escaped_for_the_properties_format(self):
        config = CharmConfig(config_overrides="web-ui.session-timeout= 1d \nx.path=C:\\tmp")
        assert config.overrides == {"web-ui.session-timeout": "1d", "x.path": "C:\\tmp"}
        cluster = Cluster("m", "", "secret")
        plan = plan_node(NodeInputs(config, "m", "trino/0", cluster=cluster))
        assert "x.path=C:\\\\tmp\n" in plan.files["/etc/trino/config.properties"].data.decode()


class TestAnOverrideTrinoRefuses:
    """The roll catches it: the unit says Trino's line, the others keep their files."""

    # `pebble logs trino` as the live tier saw it (Trino 476 refusing a property).
    LOG = "".join(
        f"2026-11-30T00:43:17.357Z [trino] {line}\n"
        for line in (
            "2026-11-30T00:43:16.100Z\tINFO\tmain\tio.airlift.log.Logging\tLogging to stderr",
            "2026-11-30T00:43:17.331Z\tERROR\tmain\tio.trino.server.Server\t"
            "Configuration is invalid",
            "==========",
            "",
            "Errors:",
            "",
            "1) Configuration property 'query.max-run-tim' was not used",
            "",
            "Warnings:",
            "",
            "1) Some warning",
            "",
            "==========",
        )
    )

    @pytest.fixture
    def serving(self, ctx, container, trino, pebble_calls) -> testing.State:
        """Unit 0 of three, leader, Trino up on its first files."""
        state = ctx.run(
            ctx.on.pebble_ready(container),
            testing.State(leader=True, containers={container}, relations={peers_with(1, 2)}),
        )
        pebble_calls.replans = 0
        return state

    def test_the_unit_that_restarts_says_trinos_line_and_keeps_the_lock(
        self, ctx, serving, etc, trino: FakeTrino, pebble_calls, monkeypatch
    ):
        trino.info = None
        restarted = configure(ctx, serving, **{"config-overrides": "query.max-run-tim=1h"})
        assert pebble_calls.restarts == [("trino",)]
        assert "query.max-run-tim=1h" in read_files(etc)["config.properties"]
        monkeypatch.setattr(rolling, "START_TIMEOUT", -1.0)  # time is up
        container = dataclasses.replace(
            restarted.get_container("trino"),
            execs={testing.Exec(["/charm/bin/pebble", "logs", "trino"], stdout=self.LOG)},
        )
        relation = restarted.get_relations("trino-peers")[0]
        waiting = dataclasses.replace(relation, peers_data={1: {"restart_request": "true"}, 2: {}})

        state = ctx.run(
            ctx.on.update_status(),
            dataclasses.replace(set_peers(restarted, waiting), containers={container}),
        )

        assert isinstance(state.unit_status, testing.BlockedStatus)
        message = state.unit_status.message
        assert message.startswith("restart failed: ")
        assert "Trino says: " in message
        assert message.startswith("restart failed: ")
        assert (
            "Trino says: 2026-11-30T00:43:17.331Z\tERROR\tmain\tio.trino.server.Server\t"
            "Configuration is invalid: 1) Configuration property 'query.max-run-tim' was not used"
        ) in message
        assert "Some warning" not in message
        assert app_data(state)["restart_granted"] == "trino-k8s/0"  # unit 1 does not go
        assert unit_data(state)["restart_failed"]

    def test_another_unit_keeps_its_last_good_files_while_the_roll_is_paused(
        self, ctx, serving, etc, pebble_calls
    ):
        before = read_files(etc)
        relation = serving.get_relations("trino-peers")[0]
        failed = dataclasses.replace(
            relation,
            local_app_data={**relation.local_app_data, "restart_granted": '"trino-k8s/1"'},
            peers_data={
                1: {"restart_request": "true", "restart_failed": '"Trino keeps exiting"'},
                2: {},
            },
        )

        state = configure(
            ctx, set_peers(serving, failed), **{"config-overrides": "query.max-run-tim=1h"}
        )

        assert read_files(etc) == before
        assert pebble_calls.restarts == []
        assert state.unit_status == testing.ActiveStatus(
            "restart queued: the roll is paused at trino-k8s/1, which failed"
        )


class TestResourceGroups:
    def test_written_for_trinos_file_manager_and_trino_restarts_to_read_them(
        self, ctx, running, etc, pebble_calls
    ):
        state = configure(ctx, running, **{"resource-groups": json.dumps(RESOURCE_GROUPS)})

        files = read_files(etc)
        assert properties(files["resource-groups.properties"]) == {
            "resource-groups.configuration-manager": "file",
            "resource-groups.config-file": "/etc/trino/resource-groups.json",
        }
        assert json.loads(files["resource-groups.json"]) == RESOURCE_GROUPS
        # Trino's file manager reads the JSON only at start (no refresh property exists).
        assert pebble_calls.restarts == [("trino",)]
        assert state.unit_status == testing.ActiveStatus()

    def test_a_json_change_rewrites_only_the_json_and_restarts(
        self, ctx, running, etc, pebble_calls
    ):
        state = configure(ctx, running, **{"resource-groups": json.dumps(RESOURCE_GROUPS)})
        served = ctx.run(ctx.on.update_status(), state)
        before = read_files(etc)
        pebble_calls.restarts.clear()
        changed = json.loads(json.dumps(RESOURCE_GROUPS))
        changed["rootGroups"][0]["subGroups"][0]["hardConcurrencyLimit"] = 2

        configure(ctx, served, **{"resource-groups": json.dumps(changed)})

        after = read_files(etc)
        assert {path for path in after if after[path] != before.get(path)} == {
            "resource-groups.json"
        }
        assert json.loads(after["resource-groups.json"]) == changed
        assert pebble_calls.restarts == [("trino",)]

    def test_clearing_the_option_removes_the_files(self, ctx, running, etc):
        state = configure(ctx, running, **{"resource-groups": json.dumps(RESOURCE_GROUPS)})
        served = ctx.run(ctx.on.update_status(), state)

        configure(ctx, served, **{"resource-groups": ""})

        assert "resource-groups.json" not in read_files(etc)
        assert "resource-groups.properties" not in read_files(etc)

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            (lambda spec: "{not json", "not valid JSON (Expecting property name"),
            (lambda spec: {**spec, "rootGroups": []}, '"rootGroups" must be a non-empty list'),
            (
                lambda spec: {**spec, "selectors": [{"user": "x", "group": "global.nope"}]},
                "selector 1: group global.nope is not defined in rootGroups",
            ),
            (
                lambda spec: {**spec, "selectors": [{"group": "global"}]},
                "selector 1: group global has subgroups: Trino queues queries only in leaf",
            ),
            (
                lambda spec: {**spec, "selectors": [{"user": "etl-(", "group": "global.etl"}]},
                "selector 1: user 'etl-(' is not a valid regular expression (missing ),",
            ),
            (
                lambda spec: {**spec, "selectors": [{"clientTags": "a", "group": "global.etl"}]},
                "selector 1: clientTags must be a list of text",
            ),
            (
                lambda spec: {**spec, "cpuQuotaPeriod": "soon"},
                "cpuQuotaPeriod 'soon' is not a duration like 1h",
            ),
        ],
    )
    def test_a_configuration_trino_would_refuse_blocks_and_keeps_the_files(
        self, ctx, running, etc, pebble_calls, change, expected
    ):
        before = read_files(etc)
        spec = change(json.loads(json.dumps(RESOURCE_GROUPS)))
        text = spec if isinstance(spec, str) else json.dumps(spec)

        state = configure(ctx, running, **{"resource-groups": text})

        assert isinstance(state.unit_status, testing.BlockedStatus)
        assert state.unit_status.message.startswith(f"resource-groups: {expected}")
        assert read_files(etc) == before
        assert pebble_calls.restarts == []

    @pytest.mark.parametrize(
        ("group", "expected"),
        [
            ({"softMemoryLimit": "1GB"}, "every group under global needs a name"),
            ({"name": "a.b"}, "group 'global.a.b': a name is not empty and has no dot"),
            ({"name": "etl"}, "group global.etl is given twice"),
            ({"name": "x", "softMemoryLimit": "lots"}, "group global.x: softMemoryLimit must be"),
            ({"name": "x", "softMemoryLimit": "101%"}, "group global.x: softMemoryLimit must be"),
            ({"name": "x", "maxQueued": -1}, "group global.x: maxQueued must be a whole number"),
            ({"name": "x", "maxQueued": True}, "group global.x: maxQueued must be a whole number"),
            ({"name": "x", "hardConcurrencyLimit": None}, "hardConcurrencyLimit must be a whole"),
            ({"name": "x", "softConcurrencyLimit": 9}, "softConcurrencyLimit must be a whole"),
            ({"name": "x", "schedulingPolicy": "fifo"}, "schedulingPolicy must be one of fair,"),
            ({"name": "x", "schedulingWeight": "1"}, "schedulingWeight must be a whole number"),
            ({"name": "x", "jmxExport": "yes"}, "jmxExport must be true or false"),
            ({"name": "x", "hardCpuLimit": "1 hour"}, "hardCpuLimit must be a duration"),
            ({"name": "x", "subGroups": {}}, "group global.x: subGroups must be a list"),
        ],
    )
    def test_group_limits_are_checked_as_trino_does(self, group, expected):
        good = {"softMemoryLimit": "10%", "hardConcurrencyLimit": 1, "maxQueued": 1}
        spec = json.loads(json.dumps(RESOURCE_GROUPS))
        spec["rootGroups"][0]["subGroups"].append({**good, **group})

        with pytest.raises(knobs.KnobError) as error:
            knobs.resource_groups(json.dumps(spec))

        assert expected in str(error.value)

    def test_java_only_regex_syntax_is_left_to_trino(self):
        spec = {**RESOURCE_GROUPS, "selectors": [{"user": "\\p{Lower}+", "group": "global.etl"}]}
        assert knobs.resource_groups(json.dumps(spec))["selectors"][0]["user"] == "\\p{Lower}+"

    def test_a_worker_never_writes_them_and_says_they_are_unused(
        self, container, trino, etc, kubernetes_calls
    ):
        coordinator_ctx = testing.Context(charm.TrinoK8sCharm)
        worker_ctx = testing.Context(charm.TrinoK8sCharm, app_name="trino-worker", unit_id=1)
        published, relation = publish(coordinator_ctx, container, trino)
        state = worker_state(published, relation, container)
        for option in ("resource-groups", "session-properties"):
            etc_files = read_files(etc)
            configured = dataclasses.replace(
                state,
                config={
                    **state.config,
                    option: json.dumps(RESOURCE_GROUPS if option == "resource-groups" else []),
                },
            )

            after = worker_ctx.run(worker_ctx.on.config_changed(), configured)

            assert isinstance(after.unit_status, testing.BlockedStatus)
            assert after.unit_status.message.startswith(f"{option} is unused on a worker (")
            assert f"`juju config trino-worker --reset {option}`" in after.unit_status.message
            written = read_files(etc)
            assert not any(
                path.startswith(("resource-groups", "session-property"))
                for path in set(written) - set(etc_files)
            )


class TestSessionProperties:
    def test_written_for_trinos_file_manager_and_trino_restarts_to_read_them(
        self, ctx, running, etc, pebble_calls
    ):
        state = configure(ctx, running, **{"session-properties": json.dumps(SESSION_RULES)})

        files = read_files(etc)
        assert properties(files["session-property-config.properties"]) == {
            "session-property-config.configuration-manager": "file",
            "session-property-manager.config-file": "/etc/trino/session-property-config.json",
        }
        assert json.loads(files["session-property-config.json"]) == SESSION_RULES
        # Trino's file manager reads the JSON only at start (no refresh property exists).
        assert pebble_calls.restarts == [("trino",)]
        assert state.unit_status == testing.ActiveStatus()

    def test_a_rule_change_rewrites_only_the_json(self, ctx, running, etc, pebble_calls):
        state = configure(ctx, running, **{"session-properties": json.dumps(SESSION_RULES)})
        served = ctx.run(ctx.on.update_status(), state)
        before = read_files(etc)
        pebble_calls.restarts.clear()
        changed = [{"user": "bob", "sessionProperties": {"query_max_run_time": "6m"}}]

        configure(ctx, served, **{"session-properties": json.dumps(changed)})

        after = read_files(etc)
        assert {path for path in after if after[path] != before.get(path)} == {
            "session-property-config.json"
        }
        assert pebble_calls.restarts == [("trino",)]

    @pytest.mark.parametrize(
        ("rules", "expected"),
        [
            ("[", "not valid JSON"),
            ({"user": "bob"}, "must be a JSON list of rules"),
            (["bob"], "rule 1: must be an object"),
            ([{"user": "bob"}], 'rule 1: needs "sessionProperties"'),
            ([{"sessionProperties": {"query_max_run_time": 5}}], 'rule 1: needs "sessionProp'),
            (
                [{"sessionProperties": {}}, {"group": "[a", "sessionProperties": {}}],
                "rule 2: group '[a' is not a valid regular expression",
            ),
            ([{"user": 7, "sessionProperties": {}}], "rule 1: user must be a regular expression"),
            ([{"queryType": 1, "sessionProperties": {}}], "rule 1: queryType must be text"),
            ([{"clientTags": [1], "sessionProperties": {}}], "rule 1: clientTags must be a list"),
        ],
    )
    def test_rules_trino_would_refuse_block_and_keep_the_files(
        self, ctx, running, etc, pebble_calls, rules, expected
    ):
        before = read_files(etc)
        text = rules if isinstance(rules, str) else json.dumps(rules)

        state = configure(ctx, running, **{"session-properties": text})

        assert isinstance(state.unit_status, testing.BlockedStatus)
        assert state.unit_status.message.startswith(f"session-properties: {expected}")
        assert read_files(etc) == before
        assert pebble_calls.restarts == []


def test_all_three_problems_are_reported_together():
    with pytest.raises(ConfigError) as error:
        CharmConfig(config_overrides="x", resource_groups="[", session_properties="{")
    assert [problem.option for problem in error.value.problems] == [
        "config-overrides",
        "resource-groups",
        "session-properties",
    ]
