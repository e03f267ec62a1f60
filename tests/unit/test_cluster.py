"""A coordinator application and its workers: what is shared, how, and who runs what."""

from __future__ import annotations

import dataclasses
import json

import ops
import pytest
from conftest import properties, read_files, worker_pod
from ops import testing

import charm

PASSWORD = "s3cr3t-Pa55"
CREDENTIALS = {"username": "sales_reader", "password": PASSWORD}
SALES = """
sales:
  connector: postgresql
  properties:
    connection-url: jdbc:postgresql://db.example:5432/sales
  secret: {secret}
  secret-properties:
    connection-user: username
    connection-password: password
"""


@pytest.fixture
def coordinator_ctx() -> testing.Context:
    return testing.Context(charm.TrinoK8sCharm, app_name="trino")


@pytest.fixture
def worker_ctx() -> testing.Context:
    return testing.Context(charm.TrinoK8sCharm, app_name="trino-worker", unit_id=1)


def publish(coordinator_ctx, container, trino) -> tuple[testing.State, testing.Relation]:
    """The coordinator leader, with a sales catalog, related to a worker application."""
    creds = testing.Secret(tracked_content=CREDENTIALS)
    relation = testing.Relation("trino-coordinator", remote_app_name="trino-worker")
    state = coordinator_ctx.run(
        coordinator_ctx.on.relation_joined(relation, remote_unit=0),
        testing.State(
            leader=True,
            containers={container},
            relations={relation, testing.PeerRelation("trino-peers")},
            secrets={creds},
            config={
                "charm-function": "coordinator",
                "catalog-config": SALES.format(secret=creds.id),
            },
        ),
    )
    return state, state.get_relation(relation.id)


def worker_state(published: testing.State, relation: testing.Relation, container, **kw):
    """A worker unit that sees what the coordinator published (data and granted secret)."""
    secret = next(s for s in published.secrets if s.label == "trino-cluster")
    seen = testing.Secret(dict(secret.latest_content or secret.tracked_content), id=secret.id)
    joined = testing.Relation(
        "trino-worker", remote_app_name="trino", remote_app_data=dict(relation.local_app_data)
    )
    return testing.State(
        containers={container},
        relations={joined, testing.PeerRelation("trino-peers")},
        secrets={seen},
        config={"charm-function": "worker"},
        **kw,
    )


class TestWhatTheCoordinatorShares:
    def test_plain_data_has_the_address_and_catalogs_but_no_credential(
        self, coordinator_ctx, container, trino
    ):
        state, relation = publish(coordinator_ctx, container, trino)

        data = relation.local_app_data
        # The application's Service: it stays when leadership moves.
        assert json.loads(data["discovery-uri"]) == (
            f"http://trino.{state.model.name}.svc.cluster.local:8080"
        )
        assert json.loads(data["environment"]).isidentifier() or data["environment"]
        catalogs = json.loads(data["catalogs"])
        assert catalogs["sales"]["properties"] == {
            "connector.name": "postgresql",
            "connection-url": "jdbc:postgresql://db.example:5432/sales",
        }
        shared_secret = next(s for s in state.secrets if s.label == "trino-cluster")
        for value in data.values():
            assert PASSWORD not in value
            assert shared_secret.tracked_content["shared-secret"] not in value

    def test_credentials_and_shared_secret_travel_in_a_granted_secret(
        self, coordinator_ctx, container, trino
    ):
        state, relation = publish(coordinator_ctx, container, trino)

        secret = next(s for s in state.secrets if s.label == "trino-cluster")
        assert json.loads(relation.local_app_data["secret-id"]) == secret.id
        content = secret.latest_content or secret.tracked_content
        assert json.loads(content["catalog-credentials"]) == {
            "sales": {"connection-password": PASSWORD, "connection-user": "sales_reader"}
        }
        assert secret.owner == "app"
        assert relation.id in secret.remote_grants

    def test_publishing_again_writes_nothing(self, coordinator_ctx, container, trino):
        state, relation = publish(coordinator_ctx, container, trino)
        secret = next(s for s in state.secrets if s.label == "trino-cluster")

        again = coordinator_ctx.run(coordinator_ctx.on.update_status(), state)

        assert again.get_relation(relation.id).local_app_data == relation.local_app_data
        after = next(s for s in again.secrets if s.label == "trino-cluster")
        assert after.latest_content == secret.latest_content

    def test_discovery_uri_overrides_the_address(self, coordinator_ctx, container, trino):
        relation = testing.Relation("trino-coordinator", remote_app_name="trino-worker")
        state = coordinator_ctx.run(
            coordinator_ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                relations={relation},
                config={"charm-function": "coordinator", "discovery-uri": "http://lake:8080"},
            ),
        )

        data = state.get_relation(relation.id).local_app_data
        assert json.loads(data["discovery-uri"]) == "http://lake:8080"

    def test_a_bad_discovery_uri_blocks_by_name(self, coordinator_ctx, container, trino):
        state = coordinator_ctx.run(
            coordinator_ctx.on.config_changed(),
            testing.State(
                leader=True,
                containers={container},
                config={"charm-function": "coordinator", "discovery-uri": "lake:8080"},
            ),
        )

        assert state.unit_status.name == "blocked"
        assert state.unit_status.message.startswith("discovery-uri: 'lake:8080' is not")

    def test_a_new_leader_shares_the_same_address_and_secret(
        self, coordinator_ctx, container, trino
    ):
        """The workers' files do not change with the leader: no worker restarts."""
        state, relation = publish(coordinator_ctx, container, trino)
        secret = next(s for s in state.secrets if s.label == "trino-cluster")
        new_leader = testing.Context(charm.TrinoK8sCharm, app_name="trino", unit_id=1)

        elected = new_leader.run(new_leader.on.leader_elected(), state)
        # It restarted on its own node.id: workers hear of it once it serves.
        assert elected.get_relation(relation.id).local_app_data == relation.local_app_data
        after = new_leader.run(new_leader.on.update_status(), elected)

        data = after.get_relation(relation.id).local_app_data
        assert data["discovery-uri"] == relation.local_app_data["discovery-uri"]
        assert json.loads(data["secret-id"]) == secret.id
        files = read_files(container.mounts["etc"].source)
        shared = secret.tracked_content["shared-secret"]
        assert properties(files["config.properties"])["internal-communication.shared-secret"] == (
            shared
        )


class TestWhatAWorkerRenders:
    def test_a_worker_renders_the_coordinator_catalogs_and_settings(
        self, coordinator_ctx, worker_ctx, container, trino, tmp_path
    ):
        published, relation = publish(coordinator_ctx, container, trino)
        worker_etc, worker_container = worker_pod(tmp_path)

        state = worker_ctx.run(
            worker_ctx.on.pebble_ready(worker_container),
            worker_state(published, relation, worker_container),
        )

        coordinator_files = read_files(container.mounts["etc"].source)
        files = read_files(worker_etc)
        assert (
            files["catalog/sales.properties"].split("\n", 1)[1]
            == (coordinator_files["catalog/sales.properties"].split("\n", 1)[1])
        )
        assert f"connection-password={PASSWORD}" in files["catalog/sales.properties"]
        assert (worker_etc / "catalog" / "sales.properties").stat().st_mode & 0o777 == 0o600
        config = properties(files["config.properties"])
        coordinator_config = properties(coordinator_files["config.properties"])
        assert config["coordinator"] == "false"
        assert "node-scheduler.include-coordinator" not in config
        assert config["discovery.uri"] == json.loads(relation.local_app_data["discovery-uri"])
        assert (
            config["internal-communication.shared-secret"]
            == coordinator_config["internal-communication.shared-secret"]
        )
        node = properties(files["node.properties"])
        assert (
            node["node.environment"]
            == properties(coordinator_files["node.properties"])["node.environment"]
        )
        assert node["node.id"] == "trino-worker-1"
        assert state.unit_status == testing.ActiveStatus()
        assert state.get_container("trino").service_statuses["trino"].value == "active"

    def test_a_worker_without_the_secret_waits_for_the_grant(
        self, coordinator_ctx, worker_ctx, container, trino
    ):
        published, relation = publish(coordinator_ctx, container, trino)
        state = dataclasses.replace(worker_state(published, relation, container), secrets=set())

        after = worker_ctx.run(worker_ctx.on.config_changed(), state)

        assert after.unit_status == testing.WaitingStatus(
            "waiting for trino to grant its cluster secret"
        )

    def test_a_worker_whose_coordinator_leaves_stops_and_says_what_to_add(
        self, worker_ctx, container, trino
    ):
        running = worker_ctx.run(
            worker_ctx.on.config_changed(),
            testing.State(
                containers={dataclasses.replace(container, service_statuses={})},
                config={"charm-function": "worker"},
            ),
        )
        relation = testing.Relation("trino-worker", remote_app_name="trino")

        state = worker_ctx.run(
            worker_ctx.on.relation_broken(relation),
            dataclasses.replace(running, relations={relation}),
        )

        assert state.unit_status.name == "waiting"
        assert "juju integrate <coordinator>:trino-coordinator" in state.unit_status.message
        assert "trino" not in state.get_container("trino").plan.services

    def test_catalog_actions_on_a_worker_point_to_the_coordinator(
        self, coordinator_ctx, worker_ctx, container, trino
    ):
        published, relation = publish(coordinator_ctx, container, trino)
        state = worker_state(published, relation, container, leader=True)

        with pytest.raises(testing.ActionFailed, match="run this on trino/leader"):
            worker_ctx.run(
                worker_ctx.on.action("add-catalog", params={"name": "a", "connector": "tpch"}),
                state,
            )

    def test_catalog_config_on_a_worker_is_flagged(
        self, coordinator_ctx, worker_ctx, container, trino
    ):
        published, relation = publish(coordinator_ctx, container, trino)
        state = worker_state(published, relation, container)
        state = dataclasses.replace(
            state, config={**state.config, "catalog-config": "tiny: {connector: tpch}"}
        )

        after = worker_ctx.run(worker_ctx.on.config_changed(), state)

        assert after.unit_status.name == "blocked"
        assert "--reset catalog-config" in after.unit_status.message
        files = read_files(container.mounts["etc"].source)
        assert "catalog/tiny.properties" not in files

    def test_the_worker_leader_gives_pods_time_to_drain(
        self, coordinator_ctx, worker_ctx, container, trino, kubernetes_calls
    ):
        published, relation = publish(coordinator_ctx, container, trino)
        kubernetes_calls.clear()
        state = worker_state(published, relation, container, leader=True)
        state = dataclasses.replace(
            state, config={**state.config, "graceful-shutdown-period": "5m"}
        )

        after = worker_ctx.run(worker_ctx.on.config_changed(), state)

        assert kubernetes_calls == [("trino-worker", after.model.name, {}, 630)]
        peers = after.get_relations("trino-peers")[0]
        assert json.loads(peers.local_app_data["patched_grace_seconds"]) == 630
        worker_ctx.run(worker_ctx.on.update_status(), after)
        assert len(kubernetes_calls) == 1  # recorded: not patched again


class TestOneCoordinator:
    @pytest.mark.parametrize("role", ["all", "coordinator"])
    def test_other_units_stand_by_and_run_nothing(self, ctx, container, etc, trino, role):
        peers = testing.PeerRelation(
            "trino-peers", local_app_data={"leader": json.dumps("trino-k8s/1")}
        )

        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                containers={container}, relations={peers}, config={"charm-function": role}
            ),
        )

        assert state.unit_status.name == "waiting"
        assert state.unit_status.message.startswith("standby: trino-k8s/1 runs the coordinator")
        assert read_files(etc) == {}
        assert "trino" not in state.get_container("trino").plan.services

    def test_a_standby_that_becomes_leader_starts_the_coordinator(
        self, ctx, container, etc, trino
    ):
        cluster = testing.Secret(
            {"shared-secret": "c2hhcmVk", "catalog-credentials": "{}"},
            owner="app",
            label="trino-cluster",
        )
        state = testing.State(
            leader=True,
            containers={container},
            relations={testing.PeerRelation("trino-peers")},
            secrets={cluster},
        )

        after = ctx.run(ctx.on.leader_elected(), state)

        config = properties(read_files(etc)["config.properties"])
        assert config["internal-communication.shared-secret"] == "c2hhcmVk"
        assert after.unit_status == testing.ActiveStatus()


def test_config_properties_with_the_shared_secret_is_private(ctx, container, etc, trino):
    ctx.run(ctx.on.config_changed(), testing.State(leader=True, containers={container}))

    assert (etc / "config.properties").stat().st_mode & 0o777 == 0o600
    plan = ops.pebble.Layer  # noqa: F841  (the plan never carries it: see test_charm)


class TestClusterWideAuthentication:
    """Every node runs the coordinator's users and rules; credentials travel in the secret."""

    USERS = "alice: s3cret\n"
    RULES = '{"catalogs": [{"user": "alice", "allow": "all"}]}'

    def publish_secured(
        self, coordinator_ctx, container
    ) -> tuple[testing.State, testing.Relation]:
        users = testing.Secret(tracked_content={"users": self.USERS})
        ingress = testing.Relation(
            "ingress", remote_app_data={"ingress": json.dumps({"url": "https://lake/trino"})}
        )
        relation = testing.Relation("trino-coordinator", remote_app_name="trino-worker")
        state = coordinator_ctx.run(
            coordinator_ctx.on.relation_joined(relation, remote_unit=0),
            testing.State(
                leader=True,
                containers={container},
                relations={relation, ingress, testing.PeerRelation("trino-peers")},
                secrets={users},
                config={
                    "charm-function": "coordinator",
                    "user-secret-id": users.id,
                    "access-control-rules": self.RULES,
                },
            ),
        )
        return state, state.get_relation(relation.id)

    def test_modes_in_settings_and_users_only_in_the_secret(
        self, coordinator_ctx, container, trino
    ):
        state, relation = self.publish_secured(coordinator_ctx, container)

        settings = json.loads(relation.local_app_data["settings"])
        assert settings == {"authentication": "password", "access-control-rules": self.RULES}
        secret = next(s for s in state.secrets if s.label == "trino-cluster")
        content = secret.latest_content or secret.tracked_content
        db = read_files(container.mounts["etc"].source)["password.db"]
        assert content["password-db"] == db
        charm_user = next(s for s in state.secrets if s.label == "trino-charm-user")
        assert content["charm-password"] == charm_user.tracked_content["password"]
        for value in relation.local_app_data.values():
            assert "$2b$" not in value
            assert content["charm-password"] not in value

    def test_a_worker_authenticates_like_its_coordinator(
        self, coordinator_ctx, worker_ctx, container, trino, tmp_path
    ):
        published, relation = self.publish_secured(coordinator_ctx, container)
        worker_etc, worker_container = worker_pod(tmp_path)

        with worker_ctx(
            worker_ctx.on.pebble_ready(worker_container),
            worker_state(published, relation, worker_container),
        ) as manager:
            state = manager.run()
            credentials = manager.charm.restarts.credentials

        files = read_files(worker_etc)
        assert files["password.db"] == read_files(container.mounts["etc"].source)["password.db"]
        assert (worker_etc / "password.db").stat().st_mode & 0o777 == 0o600
        config = properties(files["config.properties"])
        assert config["http-server.authentication.type"] == "PASSWORD"
        # No certificate on the worker: only a TLS-terminating proxy may send a password.
        assert config["http-server.process-forwarded"] == "true"
        assert "allow-insecure-over-http" not in files["config.properties"]
        rules = json.loads(files["rules.json"])
        assert {"user": "alice", "allow": "all"} in rules["catalogs"]
        charm_user = next(s for s in published.secrets if s.label == "trino-charm-user")
        assert credentials is not None
        assert credentials.password == charm_user.tracked_content["password"]
        assert credentials.forwarded_https
        # The worker's script drains on SIGTERM with the same request, from a 0600 file only.
        request = files["drain.curl"]
        assert f'user = "trino-k8s-charm:{credentials.password}"' in request
        assert 'header = "X-Forwarded-Proto: https"' in request
        assert (worker_etc / "drain.curl").stat().st_mode & 0o777 == 0o600
        plan = state.get_container("trino").plan.to_dict()
        assert credentials.password not in json.dumps(plan)
        assert state.unit_status == testing.ActiveStatus()

    @pytest.mark.parametrize("option", ["user-secret-id", "access-control-rules"])
    def test_access_options_on_a_worker_are_flagged(
        self, coordinator_ctx, worker_ctx, container, trino, option
    ):
        published, relation = self.publish_secured(coordinator_ctx, container)
        state = worker_state(published, relation, container)
        state = dataclasses.replace(state, config={**state.config, option: "x"})

        after = worker_ctx.run(worker_ctx.on.config_changed(), state)

        what = {"user-secret-id": "users", "access-control-rules": "rules"}[option]
        assert after.unit_status == testing.BlockedStatus(
            f"{option} is unused on a worker ({what} come from the coordinator): "
            f"`juju config trino-worker --reset {option}`"
        )
