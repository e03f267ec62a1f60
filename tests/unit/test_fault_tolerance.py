"""Fault-tolerant execution: retry-policy, and the exchange bucket on every node."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest
from conftest import properties, read_files, worker_pod
from ops import testing
from providers import S3_KEYS, s3_relation

import charm

EXCHANGE = "exchange-manager.properties"
FIX = "`juju integrate trino-k8s:exchange-s3 s3-integrator`"
SPOOL = {
    "exchange-manager.name": "filesystem",
    "exchange.base-directories": "s3://lake/warehouse",
    "exchange.s3.aws-access-key": S3_KEYS["access-key"],
    "exchange.s3.aws-secret-key": S3_KEYS["secret-key"],
    "exchange.s3.endpoint": "http://minio.example:9000",
    "exchange.s3.path-style-access": "true",
    "exchange.s3.region": "eu-west-1",
}


def exchange_relation(extra: testing.Secret | None = None) -> testing.Relation:
    """exchange-s3 from a v1 s3-integrator (keys in its secret), or a v0 one without it."""
    return s3_relation(1 if extra else 0, extra, endpoint="exchange-s3", app="spool")


def node(container, policy: str, *relations, secrets=(), **config) -> testing.State:
    return testing.State(
        leader=True,
        containers={container},
        relations={testing.PeerRelation("trino-peers"), *relations},
        secrets=set(secrets),
        config={"retry-policy": policy, **config},
    )


def mode(path) -> int:
    return path.stat().st_mode & 0o777


class TestTheOption:
    @pytest.mark.parametrize("policy", ["QUERY", "task", "NONE"])
    def test_a_policy_is_written_into_config_properties(self, ctx, container, etc, trino, policy):
        extra = testing.Secret(tracked_content=dict(S3_KEYS))
        ctx.run(
            ctx.on.config_changed(),
            node(container, policy, exchange_relation(extra), secrets=[extra]),
        )

        config = properties(read_files(etc)["config.properties"])
        if policy == "NONE":
            assert "retry-policy" not in config  # Trino's default, as before the option
        else:
            assert config["retry-policy"] == policy.upper()

    def test_a_bad_policy_blocks_by_name_and_writes_nothing(self, ctx, container, etc, trino):
        state = ctx.run(ctx.on.config_changed(), node(container, "SOMETIMES"))

        assert state.unit_status == testing.BlockedStatus(
            "retry-policy: 'SOMETIMES' is not a retry policy; use NONE, QUERY, TASK"
        )
        assert read_files(etc) == {}

    def test_query_without_an_exchange_runs_and_says_what_big_results_need(
        self, ctx, container, etc, trino
    ):
        state = ctx.run(ctx.on.config_changed(), node(container, "QUERY"))

        assert properties(read_files(etc)["config.properties"])["retry-policy"] == "QUERY"
        assert EXCHANGE not in read_files(etc)
        assert state.unit_status == testing.ActiveStatus(
            f"retry-policy=QUERY: results over 32MB fail until {FIX}"
        )

    def test_task_without_an_exchange_blocks_with_the_fix_and_keeps_trino_as_it_is(
        self, ctx, container, etc, trino, pebble_calls
    ):
        state = ctx.run(ctx.on.config_changed(), node(container, "NONE"))
        before = read_files(etc)
        pebble_calls.restarts.clear()

        state = ctx.run(
            ctx.on.config_changed(),
            dataclasses.replace(state, config={"retry-policy": "TASK"}),
        )

        assert state.unit_status == testing.BlockedStatus(
            f"retry-policy=TASK needs an exchange bucket: {FIX} "
            "(or `juju config trino-k8s retry-policy=QUERY`)"
        )
        assert read_files(etc) == before
        assert pebble_calls.restarts == []

    def test_a_worker_refuses_its_own_policy_by_name(self, ctx, container, trino):
        state = ctx.run(
            ctx.on.config_changed(), node(container, "TASK", **{"charm-function": "worker"})
        )

        assert state.unit_status == testing.BlockedStatus(
            "retry-policy is unused on a worker (the coordinator's applies): "
            "`juju config trino-k8s --reset retry-policy`"
        )


class TestTheExchangeOnTheCoordinator:
    @pytest.mark.parametrize("v1", [True, False])
    def test_task_with_an_exchange_writes_a_private_exchange_manager(
        self, ctx, container, etc, trino, v1
    ):
        extra = testing.Secret(tracked_content=dict(S3_KEYS)) if v1 else None
        relation = exchange_relation(extra)

        state = ctx.run(
            ctx.on.relation_changed(relation),
            node(container, "TASK", relation, secrets=[extra] if extra else []),
        )

        files = read_files(etc)
        assert properties(files[EXCHANGE]) == SPOOL
        assert mode(etc / EXCHANGE) == 0o600
        assert properties(files["config.properties"])["retry-policy"] == "TASK"
        assert state.unit_status == testing.ActiveStatus()
        plan = json.dumps(state.get_container("trino").plan.to_dict())
        for key in S3_KEYS.values():
            assert key not in plan
            assert key not in state.unit_status.message

    def test_the_leader_asks_for_a_bucket_of_its_own_with_keys_in_a_secret(
        self, ctx, container, trino
    ):
        relation = testing.Relation("exchange-s3", remote_app_name="spool")

        state = ctx.run(ctx.on.relation_created(relation), node(container, "TASK", relation))

        assert state.get_relation(relation.id).local_app_data == {
            "bucket": "trino-k8s-exchange",
            "requested-secrets": '["access-key", "secret-key"]',
            "lib-version": "1.0",
        }
        # Related, but the provider has sent nothing yet: wait, apply nothing.
        assert state.unit_status == testing.WaitingStatus(
            "exchange-s3 relation with spool: waiting for bucket, access-key, secret-key "
            "(`juju run spool/leader sync-s3-credentials` if it is an s3-integrator)"
        )

    def test_an_exchange_without_a_policy_writes_nothing(self, ctx, container, etc, trino):
        relation = exchange_relation()

        ctx.run(ctx.on.relation_changed(relation), node(container, "NONE", relation))

        assert EXCHANGE not in read_files(etc)

    def test_an_endpoint_with_its_own_ca_is_refused_by_name(self, ctx, container, etc, trino):
        relation = exchange_relation()
        ca = (pathlib.Path(__file__).parent / "data" / "other-ca.pem").read_text()
        relation = dataclasses.replace(
            relation,
            remote_app_data={**relation.remote_app_data, "tls-ca-chain": json.dumps([ca])},
        )

        state = ctx.run(ctx.on.relation_changed(relation), node(container, "TASK", relation))

        assert state.unit_status.name == "blocked"
        assert state.unit_status.message.startswith("exchange-s3: an endpoint with its own CA")
        assert read_files(etc) == {}

    def test_rotated_keys_are_rewritten_and_restart_once(
        self, ctx, container, etc, trino, pebble_calls
    ):
        extra = testing.Secret(tracked_content=dict(S3_KEYS))
        relation = exchange_relation(extra)
        state = ctx.run(
            ctx.on.relation_changed(relation),
            node(container, "TASK", relation, secrets=[extra]),
        )
        pebble_calls.restarts.clear()
        rotated = dataclasses.replace(
            extra, latest_content={**S3_KEYS, "secret-key": "r0tated-Spool-key"}
        )

        ctx.run(ctx.on.secret_changed(rotated), dataclasses.replace(state, secrets={rotated}))

        assert properties(read_files(etc)[EXCHANGE])["exchange.s3.aws-secret-key"] == (
            "r0tated-Spool-key"
        )
        assert pebble_calls.restarts == [("trino",)]

    def test_the_provider_going_away_under_task_blocks_and_keeps_the_exchange(
        self, ctx, container, etc, trino, pebble_calls
    ):
        relation = exchange_relation()
        state = ctx.run(ctx.on.relation_changed(relation), node(container, "TASK", relation))
        before = read_files(etc)
        pebble_calls.restarts.clear()

        broken = ctx.run(ctx.on.relation_broken(state.get_relation(relation.id)), state)
        assert broken.unit_status.name == "blocked"
        gone = dataclasses.replace(
            broken, relations={r for r in broken.relations if r.id != relation.id}
        )
        state = ctx.run(ctx.on.update_status(), gone)

        assert read_files(etc) == before
        assert pebble_calls.restarts == []
        assert state.unit_status.name == "blocked"
        assert FIX in state.unit_status.message

    def test_the_provider_going_away_under_query_removes_the_exchange(
        self, ctx, container, etc, trino, pebble_calls
    ):
        relation = exchange_relation()
        state = ctx.run(ctx.on.relation_changed(relation), node(container, "QUERY", relation))
        assert EXCHANGE in read_files(etc)
        pebble_calls.restarts.clear()

        state = ctx.run(ctx.on.relation_broken(state.get_relation(relation.id)), state)

        assert EXCHANGE not in read_files(etc)
        assert pebble_calls.restarts == [("trino",)]
        assert FIX in state.unit_status.message


def test_a_policy_change_rolls_like_any_change(ctx, container, etc, trino, pebble_calls):
    """Three units: the leader takes the lock first; no unit restarts out of turn."""
    peers = testing.PeerRelation("trino-peers", peers_data={1: {}, 2: {}})
    state = ctx.run(
        ctx.on.pebble_ready(container),
        testing.State(leader=True, containers={container}, relations={peers}),
    )
    pebble_calls.restarts.clear()
    trino.info = None  # restarting: Trino does not answer yet
    held = dataclasses.replace(
        state.get_relation(peers.id), peers_data={1: {}, 2: {"restart_request": "true"}}
    )
    held = dataclasses.replace(
        held, local_app_data={**held.local_app_data, "restart_granted": '"trino-k8s/2"'}
    )

    queued = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(state, relations={held}, config={"retry-policy": "QUERY"}),
    )

    assert "retry-policy" not in properties(read_files(etc)["config.properties"])
    assert pebble_calls.restarts == []
    assert json.loads(queued.get_relation(peers.id).local_unit_data["restart_request"])


class TestWorkers:
    @pytest.fixture
    def coordinator_ctx(self) -> testing.Context:
        return testing.Context(charm.TrinoK8sCharm, app_name="trino")

    @pytest.fixture
    def worker_ctx(self) -> testing.Context:
        return testing.Context(charm.TrinoK8sCharm, app_name="trino-worker", unit_id=1)

    def publish(self, coordinator_ctx, container, policy="TASK", extra=None):
        workers = testing.Relation("trino-coordinator", remote_app_name="trino-worker")
        spool = exchange_relation(extra)
        state = coordinator_ctx.run(
            coordinator_ctx.on.relation_changed(spool),
            node(
                container,
                policy,
                workers,
                spool,
                secrets=[extra] if extra else [],
                **{"charm-function": "coordinator"},
            ),
        )
        return state, state.get_relation(workers.id)

    def worker(self, worker_ctx, published, relation, container, data=None):
        secret = next(s for s in published.secrets if s.label == "trino-cluster")
        seen = testing.Secret(dict(secret.latest_content or secret.tracked_content), id=secret.id)
        joined = testing.Relation(
            "trino-worker",
            remote_app_name="trino",
            remote_app_data=dict(relation.local_app_data) if data is None else data,
        )
        state = testing.State(
            containers={container},
            relations={joined, testing.PeerRelation("trino-peers")},
            secrets={seen},
            config={"charm-function": "worker"},
        )
        return worker_ctx.run(worker_ctx.on.relation_changed(joined, remote_unit=0), state)

    def test_the_policy_is_plain_data_and_the_exchange_travels_in_the_secret(
        self, coordinator_ctx, container, trino
    ):
        state, relation = self.publish(coordinator_ctx, container)

        data = relation.local_app_data
        assert json.loads(data["retry-policy"]) == "TASK"
        for key in S3_KEYS.values():
            assert key not in json.dumps(dict(data))
        secret = next(s for s in state.secrets if s.label == "trino-cluster")
        content = secret.latest_content or secret.tracked_content
        assert json.loads(content["exchange"]) == SPOOL

    def test_a_worker_writes_the_coordinator_policy_and_exchange(
        self, coordinator_ctx, worker_ctx, container, trino, tmp_path
    ):
        published, relation = self.publish(coordinator_ctx, container)
        worker_etc, worker_container = worker_pod(tmp_path)

        state = self.worker(worker_ctx, published, relation, worker_container)

        files = read_files(worker_etc)
        assert properties(files[EXCHANGE]) == SPOOL
        assert mode(worker_etc / EXCHANGE) == 0o600
        assert properties(files["config.properties"])["retry-policy"] == "TASK"
        assert state.unit_status == testing.ActiveStatus()

    def test_a_worker_of_an_older_coordinator_runs_without_either(
        self, coordinator_ctx, worker_ctx, container, trino, tmp_path
    ):
        published, relation = self.publish(coordinator_ctx, container)
        worker_etc, worker_container = worker_pod(tmp_path)
        older = {k: v for k, v in relation.local_app_data.items() if k != "retry-policy"}
        secret = next(s for s in published.secrets if s.label == "trino-cluster")
        content = dict(secret.latest_content or secret.tracked_content)
        del content["exchange"]
        older_secret = dataclasses.replace(secret, tracked_content=content, latest_content=content)
        published = dataclasses.replace(published, secrets={older_secret})

        state = self.worker(worker_ctx, published, relation, worker_container, older)

        files = read_files(worker_etc)
        assert EXCHANGE not in files
        assert "retry-policy" not in properties(files["config.properties"])
        assert state.unit_status == testing.ActiveStatus()

    def test_a_policy_a_worker_does_not_know_is_refused(
        self, coordinator_ctx, worker_ctx, container, trino, tmp_path
    ):
        published, relation = self.publish(coordinator_ctx, container)
        worker_etc, worker_container = worker_pod(tmp_path)
        data = {**relation.local_app_data, "retry-policy": '"SOMETIMES"'}

        state = self.worker(worker_ctx, published, relation, worker_container, data)

        assert state.unit_status == testing.WaitingStatus(
            "trino shares data this charm cannot read: "
            "run the same charm revision on both applications"
        )
        assert read_files(worker_etc) == {}

    def test_rotated_keys_reach_the_workers_in_the_cluster_secret(
        self, coordinator_ctx, container, trino
    ):
        extra = testing.Secret(tracked_content=dict(S3_KEYS))
        state, _ = self.publish(coordinator_ctx, container, extra=extra)
        rotated = dataclasses.replace(
            extra, latest_content={**S3_KEYS, "secret-key": "r0tated-Spool-key"}
        )
        others = {s for s in state.secrets if s.id != extra.id}

        restarted = coordinator_ctx.run(
            coordinator_ctx.on.secret_changed(rotated),
            dataclasses.replace(state, secrets={*others, rotated}),
        )
        # Workers follow once the coordinator serves on the new keys.
        after = coordinator_ctx.run(coordinator_ctx.on.update_status(), restarted)

        secret = next(s for s in after.secrets if s.label == "trino-cluster")
        content = secret.latest_content or secret.tracked_content
        assert json.loads(content["exchange"])["exchange.s3.aws-secret-key"] == (
            "r0tated-Spool-key"
        )

    def test_exchange_properties_a_worker_does_not_know_are_refused(
        self, coordinator_ctx, worker_ctx, container, trino, tmp_path
    ):
        published, relation = self.publish(coordinator_ctx, container)
        secret = next(s for s in published.secrets if s.label == "trino-cluster")
        content = dict(secret.latest_content or secret.tracked_content)
        content["exchange"] = json.dumps({**SPOOL, "plugin.bundles": "/tmp/evil"})
        changed = dataclasses.replace(secret, tracked_content=content, latest_content=content)
        published = dataclasses.replace(published, secrets={changed})
        worker_etc, worker_container = worker_pod(tmp_path)

        state = self.worker(worker_ctx, published, relation, worker_container)

        assert state.unit_status == testing.BlockedStatus(
            "trino shares exchange properties this charm refuses (plugin.bundles): "
            "run the same charm revision on both applications"
        )
        assert read_files(worker_etc) == {}
