"""Property tests: whatever an operator types, no hook fails and the status says why.

Each example sets one option (or several) to arbitrary text or numbers and runs
config-changed. The hook must not raise; the unit ends either active with the
value in the rendered files, or blocked with a message naming the option.
"""

from __future__ import annotations

import pathlib
from unittest import mock

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ops import testing

import status
import workload
from charm import TrinoK8sCharm

OPTIONS = yaml.safe_load((pathlib.Path(__file__).parents[2] / "config.yaml").read_text())[
    "options"
]
STRING_OPTIONS = sorted(name for name, spec in OPTIONS.items() if spec["type"] == "string")
INT_OPTIONS = sorted(name for name, spec in OPTIONS.items() if spec["type"] == "int")

# Plausible-looking values mixed with arbitrary text, so both paths are explored.
near_misses = st.sampled_from(
    [
        "all",
        "worker",
        "coordinator",
        "INFO",
        "debug",
        "20GB",
        "20gb",
        "4GB",
        "30%",
        "80%",
        "2m",
        "90s",
        "8Gi",
        "500m",
        "-1",
        "0",
        "1e3",
        "-Xmx4g",
        "-XX:MaxRAMPercentage=95",
        "-Dfoo=bar baz",
        "\n",
        " ",
        "%",
        "GB",
        "∞",
    ]
)
texts = st.one_of(near_misses, st.text(max_size=40))
# Options used only once a relation makes a catalog: nothing renders them without one.
RELATION_OPTIONS = {"database-names", "lakehouse-catalog-name"}
ENUMS = {
    "charm-function": {"all", "coordinator", "worker"},
    "log-level": {"debug", "info", "warn", "error"},
}

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(config: dict[str, str | int]) -> tuple[testing.State, testing.Context]:
    """config-changed with this config; the container and Trino are there."""
    ctx = testing.Context(TrinoK8sCharm)
    container = testing.Container("trino", can_connect=True)
    up = workload.TrinoInfo(starting=False, version="483")
    with mock.patch.object(status, "probe", return_value=up):
        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(leader=True, containers={container}, config=config),
        )
    return state, ctx


def rendered(state: testing.State, ctx: testing.Context) -> str:
    root = state.get_container("trino").get_filesystem(ctx)
    return "\n".join(
        path.read_text() for path in sorted((root / "etc" / "trino").rglob("*")) if path.is_file()
    )


@SETTINGS
@given(option=st.sampled_from(STRING_OPTIONS), value=texts)
def test_any_text_in_one_option_never_fails_a_hook(option: str, value: str):
    state, ctx = run({option: value})  # a hook that raises fails the test here

    status = state.unit_status
    event(status.name)
    if isinstance(status, testing.BlockedStatus):
        assert status.message.startswith(f"{option}: "), status.message
        return
    if option in ENUMS:
        assert value.strip().lower() in ENUMS[option] or value.strip() in ENUMS[option]
    used_now = option not in {*ENUMS, *RELATION_OPTIONS} and not option.startswith("workload-")
    if value.strip() and used_now:
        # Accepted means used: every word of the value is in a rendered file.
        files = rendered(state, ctx)
        assert all(word in files for word in value.split()), (option, value)
    assert isinstance(status, testing.ActiveStatus | testing.WaitingStatus), status


@SETTINGS
@given(option=st.sampled_from(INT_OPTIONS), value=st.integers(min_value=-(2**40), max_value=2**40))
def test_any_number_in_an_int_option_never_fails_a_hook(option: str, value: int):
    state, _ = run({option: value})

    if 50 <= value <= 90:
        assert state.unit_status == testing.ActiveStatus()
    else:
        assert state.unit_status.name == "blocked"
        assert state.unit_status.message.startswith(f"{option}: {value} is outside 50-90")


@SETTINGS
@given(
    config=st.dictionaries(
        st.sampled_from(STRING_OPTIONS), texts, min_size=2, max_size=len(STRING_OPTIONS)
    )
)
def test_several_bad_options_block_on_one_of_them(config: dict[str, str]):
    state, _ = run(config)

    status = state.unit_status
    if isinstance(status, testing.BlockedStatus):
        named = status.message.split(":", 1)[0]
        assert named in config, status.message
