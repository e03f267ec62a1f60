"""A provider that is briefly incomplete never costs a working catalog.

A TLS secret that cannot be read for a moment, blank `endpoints`, blank S3 keys
or an S3 secret that cannot be read: the catalog Trino has stays as it is (no
file written, no restart), the unit says `waiting` until the provider is whole
again, and only removing the relation removes the catalog.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import read_files
from ops import testing
from providers import (
    LOGIN,
    S3_KEYS,
    catalog_files,
    database_relation,
    login_secret,
    s3_relation,
    tls_secret,
)

import metastore

KEPT = "Trino keeps the last good catalog until then"


@pytest.fixture(autouse=True)
def no_database(monkeypatch):
    monkeypatch.setattr(metastore, "create_schema", lambda *args, **kwargs: None)


def mtimes(etc) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in etc.rglob("*") if p.is_file()}


def replace_relation(state: testing.State, relation: testing.Relation, **changes) -> testing.State:
    changed = dataclasses.replace(state.get_relation(relation.id), **changes)
    others = {r for r in state.relations if r.id != relation.id}
    return dataclasses.replace(state, relations={*others, changed})


def changed(ctx, state: testing.State, relation: testing.Relation) -> testing.State:
    """relation-changed of ``relation`` as it is in ``state``."""
    return ctx.run(ctx.on.relation_changed(state.get_relation(relation.id)), state)


def without_secret(state: testing.State, secret: testing.Secret) -> testing.State:
    return dataclasses.replace(state, secrets={s for s in state.secrets if s.id != secret.id})


@pytest.fixture
def sales(ctx, container, peers, etc, trino, pebble_calls):
    """A running leader with a TLS PostgreSQL catalog from the `sales-db` relation."""
    user, tls = login_secret(), tls_secret()
    relation = database_relation("postgresql", "sales-db", user, tls=tls)
    state = ctx.run(
        ctx.on.relation_changed(relation),
        testing.State(
            leader=True, containers={container}, relations={peers, relation}, secrets={user, tls}
        ),
    )
    assert set(catalog_files(etc)) == {"sales_db"}
    assert state.unit_status == testing.ActiveStatus()
    pebble_calls.restarts.clear()
    return state, relation, tls


def assert_kept(after: testing.State, before: dict, before_mtimes: dict, etc, pebble_calls, why):
    assert read_files(etc) == before
    assert mtimes(etc) == before_mtimes
    assert pebble_calls.restarts == []
    assert after.unit_status.name == "waiting", after.unit_status
    assert after.unit_status.message.startswith(why), after.unit_status.message
    assert KEPT in after.unit_status.message


class TestDatabaseRelation:
    def test_an_unreadable_tls_secret_keeps_the_catalog_and_waits(
        self, ctx, sales, etc, pebble_calls
    ):
        state, relation, tls = sales
        before, before_mtimes = read_files(etc), mtimes(etc)

        after = changed(ctx, without_secret(state, tls), relation)

        assert_kept(
            after, before, before_mtimes, etc, pebble_calls,
            "postgresql relation with sales-db: waiting for its TLS secret",
        )  # fmt: skip

    def test_blank_endpoints_keep_the_catalog_and_wait(self, ctx, sales, etc, pebble_calls):
        state, relation, _ = sales
        before, before_mtimes = read_files(etc), mtimes(etc)
        data = {**state.get_relation(relation.id).remote_app_data, "endpoints": ""}

        after = changed(ctx, replace_relation(state, relation, remote_app_data=data), relation)

        assert_kept(
            after, before, before_mtimes, etc, pebble_calls,
            "postgresql relation with sales-db: waiting for sales-db",
        )  # fmt: skip

    def test_the_provider_whole_again_brings_its_new_data(self, ctx, sales, etc, pebble_calls):
        state, relation, tls = sales
        held = changed(ctx, without_secret(state, tls), relation)
        data = {**held.get_relation(relation.id).remote_app_data, "endpoints": "pg-new:5432"}

        whole = dataclasses.replace(held, secrets={*held.secrets, tls})
        after = changed(ctx, replace_relation(whole, relation, remote_app_data=data), relation)

        assert after.unit_status == testing.ActiveStatus()
        assert catalog_files(etc)["sales_db"]["connection-url"].startswith(
            "jdbc:postgresql://pg-new:5432/sales-db"
        )
        assert pebble_calls.restarts == [("trino",)]

    def test_removing_the_relation_while_it_waits_removes_the_catalog(
        self, ctx, sales, etc, pebble_calls
    ):
        state, relation, tls = sales
        held = changed(ctx, without_secret(state, tls), relation)

        after = ctx.run(ctx.on.relation_broken(held.get_relation(relation.id)), held)

        assert catalog_files(etc) == {}
        assert after.unit_status == testing.ActiveStatus()

    def test_the_kept_catalog_survives_a_leader_change(self, ctx, sales, etc, pebble_calls):
        state, relation, tls = sales
        held = changed(ctx, without_secret(state, tls), relation)
        for path in etc.rglob("*.properties"):
            path.unlink()  # a new leader's pod: nothing written yet

        after = ctx.run(ctx.on.leader_elected(), held)

        assert "sales_db" in catalog_files(etc)
        assert after.unit_status.name == "waiting"

    def test_kept_credentials_are_only_in_a_secret_and_the_0600_file(self, ctx, sales):
        state, relation, tls = sales

        after = changed(ctx, without_secret(state, tls), relation)

        plain = json.dumps([dict(r.local_app_data) for r in after.relations])
        plain += json.dumps([dict(r.local_unit_data) for r in after.relations])
        plain += after.get_container("trino").plan.to_yaml() + after.unit_status.message
        plain += "\n".join(log.message for log in ctx.juju_log)
        assert LOGIN["password"] not in plain


@pytest.fixture
def lake(ctx, container, peers, etc, trino, pebble_calls, request):
    """A running leader with the lakehouse catalog (s3 v0 or v1)."""
    version = request.param
    user, extra = login_secret(), testing.Secret(tracked_content=dict(S3_KEYS))
    meta = database_relation("metastore", "postgresql-k8s", user, database="trino-k8s-metastore")
    s3 = s3_relation(version, extra)
    state = ctx.run(
        ctx.on.relation_changed(s3),
        testing.State(
            leader=True, containers={container}, relations={peers, meta, s3}, secrets={user, extra}
        ),
    )
    assert set(catalog_files(etc)) == {"lakehouse"}
    pebble_calls.restarts.clear()
    return state, s3, extra


class TestS3Relation:
    @pytest.mark.parametrize("lake", [0], indirect=True)
    def test_blank_s3_keys_keep_the_lakehouse_and_wait(self, ctx, lake, etc, pebble_calls):
        state, s3, _ = lake
        before, before_mtimes = read_files(etc), mtimes(etc)
        data = {**state.get_relation(s3.id).remote_app_data, "access-key": "", "secret-key": ""}

        after = changed(ctx, replace_relation(state, s3, remote_app_data=data), s3)

        assert_kept(
            after, before, before_mtimes, etc, pebble_calls,
            "s3-credentials relation with s3-integrator: waiting for access-key, secret-key",
        )  # fmt: skip

    @pytest.mark.parametrize("lake", [1], indirect=True)
    def test_an_unreadable_s3_secret_keeps_the_lakehouse_and_waits(
        self, ctx, lake, etc, pebble_calls
    ):
        state, s3, extra = lake
        before, before_mtimes = read_files(etc), mtimes(etc)

        after = changed(ctx, without_secret(state, extra), s3)

        assert_kept(
            after, before, before_mtimes, etc, pebble_calls,
            "s3-credentials relation with s3-integrator: its secret cannot be read yet",
        )  # fmt: skip

    @pytest.mark.parametrize("lake", [0], indirect=True)
    def test_removing_s3_while_it_waits_removes_the_lakehouse(self, ctx, lake, etc):
        state, s3, _ = lake
        data = {**state.get_relation(s3.id).remote_app_data, "access-key": ""}
        held = changed(ctx, replace_relation(state, s3, remote_app_data=data), s3)

        ctx.run(ctx.on.relation_broken(held.get_relation(s3.id)), held)

        assert catalog_files(etc) == {}
