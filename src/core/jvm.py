"""JVM flags for Trino: the recommended set, the operator's overrides, the heap."""

from __future__ import annotations

import re

from core import sizes

# Trino's recommended starting point (docs: installation/deployment, jvm.config).
# The heap flags are added from `heap-percentage`: a percentage of the container
# limit follows the limit when it changes, where a fixed -Xmx would not. Without a
# limit a percentage would be of the whole node's memory, so the heap is then a fixed
# -Xmx: `heap-percentage` of the memory request, or DEFAULT_HEAP without one.
RECOMMENDED_FLAGS = (
    "-server",
    "-XX:G1HeapRegionSize=32M",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:+HeapDumpOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:ReservedCodeCacheSize=512M",
    "-XX:PerMethodRecompilationCutoff=10000",
    "-XX:PerBytecodeRecompilationCutoff=10000",
    "-Djdk.attach.allowAttachSelf=true",
    "-Djdk.nio.maxCachedBufferSize=2000000",
)

# Trino settings the charm writes or relies on, each with everything under it: airlift's
# config loader lets JVM system properties win over config.properties (and the files the
# server reads the same way), so `-D` of one would quietly undo what the charm wrote.
OWNED_PROPERTIES = (
    "config", "secretsConfig", "coordinator", "node", "node-scheduler", "discovery",
    "http-server", "internal-communication", "management", "web-ui", "access-control",
    "security", "password-authenticator", "file.password-file", "file.refresh-period",
    "catalog", "plugin", "shutdown", "query.max-memory", "query.max-memory-per-node",
    "query.max-total-memory", "memory.heap-headroom-per-node", "tracing", "otel",
    "metrics", "openmetrics", "log",
)  # fmt: skip
# Options that load code or run commands: whatever they name would run as Trino
# (and -Xrun<library>, the old spelling of -agentlib).
CODE_OPTIONS = frozenset(
    {
        "-javaagent", "-agentpath", "-agentlib", "-Xbootclasspath", "-cp", "-classpath",
        "--class-path", "-p", "--module-path", "--upgrade-module-path", "--patch-module",
        "-XX:OnOutOfMemoryError", "-XX:OnError", "-XX:VMOptionsFile", "-XX:Flags",
        "-Djava.system.class.loader", "-Djava.security.manager",
        "-Djava.util.logging.config.class",
    }
)  # fmt: skip

DEFAULT_HEAP = 2 * 2**30  # no memory limit nor request: a bounded heap, not a share of the node
MIN_HEAP = 512 * 2**20  # the smallest heap the charm lets Trino start with
PERCENTAGE_FLAGS = ("-XX:MaxRAMPercentage", "-XX:InitialRAMPercentage", "-XX:MinRAMPercentage")
# -XX flags whose value is a size (the JVM refuses anything else at start).
SIZE_FLAGS = frozenset(
    f"-XX:{name}"
    for name in (
        "CompressedClassSpaceSize", "G1HeapRegionSize", "InitialCodeCacheSize",
        "InitialHeapSize", "MaxDirectMemorySize", "MaxHeapSize", "MaxMetaspaceSize",
        "MaxNewSize", "MetaspaceSize", "MinHeapSize", "NewSize", "ReservedCodeCacheSize",
        "ThreadStackSize",
    )
)  # fmt: skip

_XX = re.compile(r"-XX:[+-]?([A-Za-z0-9_]+)")
_SYSTEM_PROPERTY = re.compile(r"-D([^=]+)")
_X_SIZE = re.compile(r"-X(ms|mx|ss|mn)")


def flag_name(flag: str) -> str:
    """What makes two flags "the same flag", so that one replaces the other.

    ``-XX:+Foo``, ``-XX:-Foo`` and ``-XX:Foo=1`` are all ``-XX:Foo``; ``-Da=1``
    is ``-Da``; ``-Xmx4g`` is ``-Xmx``. Anything else is only the same as itself.
    """
    for pattern, prefix in ((_XX, "-XX:"), (_SYSTEM_PROPERTY, "-D"), (_X_SIZE, "-X")):
        match = pattern.match(flag)  # a prefix: the value follows
        if match:
            return prefix + match[1]
    return flag


def heap_flags(
    heap_percentage: int, memory_limit: float | None, memory_request: float | None = None
) -> list[str]:
    """The default heap: a share of the limit, else of the request, else DEFAULT_HEAP."""
    if memory_limit:
        return [
            f"-XX:InitialRAMPercentage={heap_percentage}",
            f"-XX:MaxRAMPercentage={heap_percentage}",
        ]
    heap = memory_request * heap_percentage / 100 if memory_request else DEFAULT_HEAP
    return [f"-Xmx{int(heap) // 2**20}m"]


def flags(
    heap_percentage: int,
    additional: str,
    memory_limit: float | None = None,
    memory_request: float | None = None,
) -> list[str]:
    """The final flag list: recommended, heap, then the operator's flags.

    An operator flag takes the place of the default of the same name, so the
    file never holds two conflicting values; new flags follow in the order given.
    """
    defaults = [
        *RECOMMENDED_FLAGS[:1],
        *heap_flags(heap_percentage, memory_limit, memory_request),
        *RECOMMENDED_FLAGS[1:],
    ]
    merged = {flag_name(flag): flag for flag in defaults}
    for flag in additional.split():
        merged[flag_name(flag)] = flag  # a dict keeps a replaced key in its place
    return list(merged.values())


def _refused(flag: str, name: str) -> str | None:
    """Why the charm never passes ``flag`` on: it runs code, or undoes a setting it writes."""
    option = re.split(r"[:=/]", flag, maxsplit=1)[0]
    if name in CODE_OPTIONS or option in CODE_OPTIONS or flag.startswith("-Xrun"):
        return f"{flag!r} runs code or commands the charm does not control; remove it"
    owned = name.removeprefix("-D") if name.startswith("-D") else ""
    if any(owned == prefix or owned.startswith(f"{prefix}.") for prefix in OWNED_PROPERTIES):
        return (
            f"{flag!r} would override {owned}, a Trino setting the charm manages "
            "(JVM system properties win over its files); remove it"
        )
    return None


def flag_problem(flag: str) -> str | None:
    """Why the JVM (or the heap arithmetic) would refuse ``flag``, if it would."""
    if not flag.startswith("-"):
        return f"{flag!r} is not a JVM flag (flags start with '-')"
    name = flag_name(flag)
    refused = _refused(flag, name)
    if refused:
        return refused
    value = flag.partition("=")[2]
    if name in PERCENTAGE_FLAGS:
        if sizes.percentage(value + "%") is None or not 0 < float(value) <= 100:  # noqa: PLR2004
            return f"{flag!r} needs a percentage between 0 and 100"
    if name in ("-Xmx", "-Xms", "-Xss", "-Xmn") and not sizes.jvm_size(flag[4:]):
        return f"{flag!r} needs a size such as {name}8g"
    if name in SIZE_FLAGS and not sizes.jvm_size(value):
        return f"{flag!r} needs a size such as {name}=512m"
    return None


def heap_bytes(jvm_flags: list[str], memory_limit: float | None) -> float | None:
    """The heap the JVM will have, or None when it depends on an unknown limit.

    ``-Xmx`` wins over ``-XX:MaxRAMPercentage``, as in the JVM itself.
    """
    by_name = {flag_name(flag): flag for flag in jvm_flags}
    if "-Xmx" in by_name:
        return sizes.jvm_size(by_name["-Xmx"][4:])
    if memory_limit is None or "-XX:MaxRAMPercentage" not in by_name:
        return None
    return memory_limit * float(by_name["-XX:MaxRAMPercentage"].partition("=")[2]) / 100


def initial_heap_bytes(jvm_flags: list[str]) -> int | None:
    """The initial heap an explicit ``-Xms`` asks for."""
    by_name = {flag_name(flag): flag for flag in jvm_flags}
    return sizes.jvm_size(by_name["-Xms"][4:]) if "-Xms" in by_name else None
