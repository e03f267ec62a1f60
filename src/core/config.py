"""The charm's config options, typed and checked before anything is written.

Every check names the option and says how to fix it, because the message ends
up in `juju status`. A config that Trino would refuse at startup is refused
here instead, so the running node keeps its last good files.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import NamedTuple

from core import jvm, sizes

_DISCOVERY_URI = re.compile(r"https?://[A-Za-z0-9.-]+(?::([0-9]{1,5}))?/?")
HEAP_HEADROOM = 0.3  # Trino's default memory.heap-headroom-per-node: 30% of the heap
HEAP_PERCENTAGE_RANGE = (50, 90)
LOG_LEVELS = ("debug", "info", "warn", "error")
RETRY_POLICIES = ("NONE", "QUERY", "TASK")
MAX_PORT = 65535


class Role(str, enum.Enum):
    """What a unit of this application is in the Trino cluster."""

    ALL = "all"
    COORDINATOR = "coordinator"
    WORKER = "worker"


class Problem(NamedTuple):
    """One bad option and how to fix it."""

    option: str
    message: str

    def __str__(self) -> str:
        return f"{self.option}: {self.message}"


class ConfigError(ValueError):
    """The config holds values Trino or Kubernetes would refuse."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True, kw_only=True)
class CharmConfig:
    """The options of config.yaml, with dashes turned into underscores."""

    charm_function: str = "all"
    log_level: str = "info"
    heap_percentage: int = 80
    additional_jvm_options: str = ""
    query_max_memory: str = ""
    query_max_memory_per_node: str = ""
    graceful_shutdown_period: str = "2m"
    discovery_uri: str = ""
    workload_memory_limit: str = ""
    workload_cpu_limit: str = ""
    workload_memory_request: str = ""
    workload_cpu_request: str = ""
    config_overrides: str = ""
    resource_groups: str = ""
    session_properties: str = ""
    retry_policy: str = "NONE"

    def __post_init__(self):
        problems = [*self._value_problems()]
        if not problems:  # cross-option checks only make sense on valid values
            problems += self._memory_problems()
        if problems:
            raise ConfigError(problems)

    @property
    def role(self) -> Role:
        """The role from `charm-function`."""
        return Role(self.charm_function.strip())

    @property
    def retry(self) -> str:
        """Trino's `retry-policy`, spelled as Trino wants it."""
        return self.retry_policy.strip().upper()

    @property
    def grace_seconds(self) -> float:
        """`graceful-shutdown-period` in seconds."""
        return sizes.trino_duration_seconds(self.graceful_shutdown_period.strip()) or 0.0

    @property
    def jvm_flags(self) -> list[str]:
        """The jvm.config lines."""
        return jvm.flags(
            self.heap_percentage, self.additional_jvm_options, *self._memory_limit_and_request()
        )

    def _memory_limit_and_request(self) -> tuple[float | None, float | None]:
        return (
            sizes.k8s_quantity(self.workload_memory_limit.strip()),
            sizes.k8s_quantity(self.workload_memory_request.strip()),
        )

    @property
    def resources(self) -> dict[str, dict[str, str]]:
        """Kubernetes resources of the trino container; empty sections left out."""
        limits = {"memory": self.workload_memory_limit, "cpu": self.workload_cpu_limit}
        requests = {"memory": self.workload_memory_request, "cpu": self.workload_cpu_request}
        sections = {"limits": limits, "requests": requests}
        return {
            name: {kind: value.strip() for kind, value in section.items() if value.strip()}
            for name, section in sections.items()
            if any(value.strip() for value in section.values())
        }

    def _value_problems(self):
        if self.charm_function.strip() not in {role.value for role in Role}:
            yield Problem(
                "charm-function",
                f"{self.charm_function!r} is not a role; use all, coordinator or worker",
            )
        if self.log_level.strip().lower() not in LOG_LEVELS:
            yield Problem(
                "log-level", f"{self.log_level!r} is not a level; use {', '.join(LOG_LEVELS)}"
            )
        yield from self._retry_problems()
        low, high = HEAP_PERCENTAGE_RANGE
        if not low <= self.heap_percentage <= high:
            yield Problem(
                "heap-percentage",
                f"{self.heap_percentage} is outside {low}-{high}; Trino wants 70-85",
            )
        for flag in self.additional_jvm_options.split():
            problem = jvm.flag_problem(flag)
            if problem:
                yield Problem("additional-jvm-options", problem)
        if self.query_max_memory and not sizes.trino_size(self.query_max_memory.strip()):
            yield Problem(
                "query-max-memory",
                f"{self.query_max_memory!r} is not a Trino data size such as 20GB "
                "(units B, kB, MB, GB, TB, PB)",
            )
        if self.query_max_memory_per_node and self._per_node_share() is None:
            per_node = self.query_max_memory_per_node.strip()
            if not sizes.trino_size(per_node):
                yield Problem(
                    "query-max-memory-per-node",
                    f"{self.query_max_memory_per_node!r} is neither a Trino data size "
                    "such as 4GB nor a share of the heap such as 30%",
                )
        if not sizes.trino_duration_ok(self.graceful_shutdown_period.strip()):
            yield Problem(
                "graceful-shutdown-period",
                f"{self.graceful_shutdown_period!r} is not a Trino duration such as 2m or 90s",
            )
        yield from self._resource_problems()
        yield from self._knob_problems()

    def _retry_problems(self):
        if self.retry not in RETRY_POLICIES:
            yield Problem(
                "retry-policy",
                f"{self.retry_policy!r} is not a retry policy; use {', '.join(RETRY_POLICIES)}",
            )

    def _resource_problems(self):
        uri = self.discovery_uri.strip()
        match = _DISCOVERY_URI.fullmatch(uri)
        if uri and not (match and 0 < int(match[1] or 80) <= MAX_PORT):
            yield Problem(
                "discovery-uri",
                f"{uri!r} is not an http(s) URL with a host (and a port up to {MAX_PORT}) "
                "such as http://trino-0.trino-endpoints.lake.svc.cluster.local:8080",
            )
        for option, value, kind in (
            ("workload-memory-limit", self.workload_memory_limit, "memory"),
            ("workload-memory-request", self.workload_memory_request, "memory"),
            ("workload-cpu-limit", self.workload_cpu_limit, "cpu"),
            ("workload-cpu-request", self.workload_cpu_request, "cpu"),
        ):
            if value.strip() and not sizes.k8s_quantity(value.strip()):
                example = "8Gi" if kind == "memory" else "2 or 500m"
                yield Problem(
                    option, f"{value!r} is not a positive Kubernetes quantity such as {example}"
                )
        for kind in ("memory", "cpu"):
            limit_option, request_option = f"workload-{kind}-limit", f"workload-{kind}-request"
            limit = getattr(self, limit_option.replace("-", "_")).strip()
            request = getattr(self, request_option.replace("-", "_")).strip()
            limit_value, request_value = sizes.k8s_quantity(limit), sizes.k8s_quantity(request)
            if limit_value and request_value and request_value > limit_value:
                yield Problem(
                    request_option,
                    f"{request} is above {limit_option}={limit}; Kubernetes refuses that",
                )

    @property
    def overrides(self) -> dict[str, str]:
        """The `config-overrides` properties (checked when the config was loaded)."""
        if not self.config_overrides.strip():
            return {}
        from core import knobs  # noqa: PLC0415  (only when an operating knob is set)

        return knobs.overrides(self.config_overrides)

    def _knob_problems(self):
        if not (self.config_overrides + self.resource_groups + self.session_properties).strip():
            return
        from core import knobs  # noqa: PLC0415  (only when an operating knob is set)

        for option, check, text in (
            (knobs.OVERRIDES, knobs.overrides, self.config_overrides),
            (knobs.RESOURCE_GROUPS, knobs.resource_groups, self.resource_groups),
            (knobs.SESSION_PROPERTIES, knobs.session_properties, self.session_properties),
        ):
            if not text.strip():
                continue
            try:
                check(text)
            except knobs.KnobError as error:
                yield Problem(option, str(error))

    def _per_node_share(self) -> float | None:
        share = sizes.percentage(self.query_max_memory_per_node.strip())
        return share if share is not None and 0 < share <= 100 else None  # noqa: PLR2004

    def _memory_problems(self) -> list[Problem]:
        """Cross-option memory checks: the heap first, then what must fit in it."""
        return self._heap_problems() or self._per_node_problems()

    def _heap_source(self) -> tuple[str, str]:
        """Which option sets the heap, and how it says so (for messages)."""
        mine = {jvm.flag_name(flag): flag for flag in self.additional_jvm_options.split()}
        limit, request = self._memory_limit_and_request()
        if "-Xmx" in mine:
            return "additional-jvm-options", f"set by {mine['-Xmx']}"
        if limit:
            flag = mine.get("-XX:MaxRAMPercentage")
            option = "additional-jvm-options" if flag else "workload-memory-limit"
            percent = flag.partition("=")[2] if flag else self.heap_percentage
            return (
                option,
                f"{percent}% of workload-memory-limit {self.workload_memory_limit.strip()}",
            )
        if request:
            share = f"{self.heap_percentage}% of workload-memory-request"
            return "workload-memory-request", f"{share} {self.workload_memory_request.strip()}"
        return "workload-memory-limit", "the default heap without workload-memory-limit"

    def _heap_problems(self) -> list[Problem]:
        """Heaps the JVM refuses, or Trino cannot start in, or the container cannot hold."""
        mine = {jvm.flag_name(flag): flag for flag in self.additional_jvm_options.split()}
        limit, _ = self._memory_limit_and_request()
        shares = [mine[name] for name in jvm.PERCENTAGE_FLAGS if name in mine]
        if shares and not limit and "-Xmx" not in mine:
            return [
                Problem(
                    "additional-jvm-options",
                    f"{shares[0]} without workload-memory-limit is a share of the whole "
                    "node's memory; set workload-memory-limit, or give -Xmx instead",
                )
            ]
        heap = jvm.heap_bytes(self.jvm_flags, limit) or 0
        option, source = self._heap_source()
        if heap < jvm.MIN_HEAP:
            return [
                Problem(
                    option,
                    f"the heap would be {sizes.human(heap)} ({source}); Trino needs at least "
                    f"{sizes.human(jvm.MIN_HEAP)}: give it more memory",
                )
            ]
        if limit and heap > limit:
            return [
                Problem(
                    "additional-jvm-options",
                    f"the heap {sizes.human(heap)} ({source}) is more than "
                    f"workload-memory-limit {self.workload_memory_limit.strip()}: Kubernetes "
                    "would kill the container; lower -Xmx or raise the limit",
                )
            ]
        initial = jvm.initial_heap_bytes(self.jvm_flags)
        if initial and initial > heap:
            return [
                Problem(
                    "additional-jvm-options",
                    f"{mine.get('-Xms')} is more than the heap {sizes.human(heap)} ({source}); "
                    "the JVM refuses to start: lower -Xms",
                )
            ]
        return []

    def _per_node_problems(self) -> list[Problem]:
        """Trino refuses to start unless per-node query memory + headroom fit the heap."""
        if not self.query_max_memory_per_node.strip():
            return []
        headroom_pct = HEAP_HEADROOM * 100
        share = self._per_node_share()
        if share is not None:
            if share + headroom_pct > 100:  # noqa: PLR2004
                return [
                    Problem(
                        "query-max-memory-per-node",
                        f"{share:g}% of the heap plus Trino's {headroom_pct:g}% heap headroom "
                        f"is more than the heap; use at most {100 - headroom_pct:g}%",
                    )
                ]
            return []
        per_node = sizes.trino_size(self.query_max_memory_per_node.strip()) or 0
        heap = jvm.heap_bytes(self.jvm_flags, self._memory_limit_and_request()[0]) or 0
        if per_node + HEAP_HEADROOM * heap > heap:
            return [
                Problem(
                    "query-max-memory-per-node",
                    f"{self.query_max_memory_per_node.strip()} plus Trino's heap headroom "
                    f"{sizes.human(HEAP_HEADROOM * heap)} exceeds the heap {sizes.human(heap)} "
                    f"({self._heap_source()[1]}); use at most "
                    f"{sizes.human((1 - HEAP_HEADROOM) * heap)} or give Trino more memory",
                )
            ]
        return []
