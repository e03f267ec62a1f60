"""Property tests: random catalog documents and action params never fail a hook.

Whatever the document, the unit ends active with exactly the documented
catalogs on disk, or blocked with a message that names the culprit (a catalog
or `catalog-config`), and an invalid add-catalog fails the action by name.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from unittest import mock

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ops import testing

import status
import workload
from charm import TrinoK8sCharm
from core.catalogs import CONNECTORS

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

names = st.one_of(
    st.from_regex(VALID_NAME, fullmatch=True).filter(lambda n: len(n) < 20),
    st.sampled_from(["system", "Sales", "a-b", "1x", "", "ünï"]),
    st.text(max_size=10),
)
connectors = st.one_of(st.sampled_from(sorted(CONNECTORS)), st.text(max_size=12))
keys = st.one_of(
    st.sampled_from(["connection-url", "iceberg.catalog.type", "hive.metastore.uri", "a.b_c-d"]),
    st.text(max_size=12),
)
scalars = st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.floats(allow_nan=False))
entries = st.one_of(
    st.fixed_dictionaries(
        {"connector": connectors},
        optional={
            "properties": st.dictionaries(keys, scalars, max_size=3),
            "secret-properties": st.dictionaries(keys, st.text(max_size=5), max_size=2),
            "secret": st.text(max_size=10),
        },
    ),
    scalars,
    st.lists(scalars, max_size=2),
)
simple_valid = st.dictionaries(
    st.from_regex(VALID_NAME, fullmatch=True).filter(lambda n: n != "system" and len(n) < 20),
    st.fixed_dictionaries(
        {"connector": st.sampled_from(["tpch", "tpcds", "memory", "blackhole"])}
    ),
    max_size=4,
)
documents = st.one_of(simple_valid, st.dictionaries(names, entries, max_size=4), scalars)


def run(event_factory, state_kwargs) -> tuple[testing.State | str, testing.Context, Path]:
    """Run one event on a fresh leader; an action failure comes back as its message."""
    ctx = testing.Context(TrinoK8sCharm)
    etc = Path(tempfile.mkdtemp())
    container = testing.Container(
        "trino", can_connect=True, mounts={"etc": testing.Mount(location="/etc/trino", source=etc)}
    )
    peers = testing.PeerRelation("trino-peers")
    state = testing.State(containers={container}, relations={peers}, leader=True, **state_kwargs)
    up = workload.TrinoInfo(starting=False, version="483")
    with mock.patch.object(status, "probe", return_value=up):
        try:
            return ctx.run(event_factory(ctx), state), ctx, etc
        except testing.ActionFailed as failure:
            return failure.message, ctx, etc


@SETTINGS
@given(document=documents)
def test_any_catalog_config_document_ends_active_or_blocked_by_name(document):
    text = yaml.safe_dump(document)
    state, _, etc = run(lambda ctx: ctx.on.config_changed(), {"config": {"catalog-config": text}})
    assert isinstance(state, testing.State)

    status = state.unit_status
    event(status.name)
    written = {path.stem for path in (etc / "catalog").glob("*.properties")}
    if isinstance(status, testing.BlockedStatus):
        assert written == set()  # nothing good before: nothing written
        culprit = status.message.split(":", 1)[0]
        assert culprit == "catalog-config" or any(
            culprit.startswith(f"catalog {str(name)!r}") for name in document
        ), status.message
        return
    assert status == testing.ActiveStatus()
    catalogs = document if isinstance(document, dict) else {}
    assert written == {str(name) for name in catalogs}
    for name, entry in catalogs.items():
        assert VALID_NAME.match(str(name)) and name != "system"
        assert entry["connector"] in CONNECTORS


@SETTINGS
@given(name=names, connector=connectors, props=st.dictionaries(keys, scalars, max_size=3))
def test_any_add_catalog_params_succeed_or_fail_by_name(name, connector, props):
    params = {"name": name, "connector": connector, "properties": props}
    state, ctx, etc = run(lambda ctx: ctx.on.action("add-catalog", params=params), {})

    written = {path.stem for path in (etc / "catalog").glob("*.properties")}
    if isinstance(state, str):
        event("refused")
        assert f"catalog {name!r}" in state, state
        assert written == set()
        assert ctx.action_results is None
        return
    event("added")
    assert written == {name}
    assert VALID_NAME.match(name) and name != "system"
    assert connector in CONNECTORS
