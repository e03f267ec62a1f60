"""JVM flags for Trino: the recommended set, the operator's overrides, the heap."""

from __future__ import annotations

import re

from core import sizes

# Trino's recommended starting point (docs: installation/deployment, jvm.config).
# The heap flags are added from `heap-percentage`: a percentage of the container
# limit follows the limit when it changes, where a fixed -Xmx would not.
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

_XX = re.compile(r"^-XX:[+-]?([A-Za-z0-9_]+)")
_SYSTEM_PROPERTY = re.compile(r"^-D([^=]+)")
_X_SIZE = re.compile(r"^-X(ms|mx|ss|mn)")


def flag_name(flag: str) -> str:
    """What makes two flags "the same flag", so that one replaces the other.

    ``-XX:+Foo``, ``-XX:-Foo`` and ``-XX:Foo=1`` are all ``-XX:Foo``; ``-Da=1``
    is ``-Da``; ``-Xmx4g`` is ``-Xmx``. Anything else is only the same as itself.
    """
    for pattern, prefix in ((_XX, "-XX:"), (_SYSTEM_PROPERTY, "-D"), (_X_SIZE, "-X")):
        match = pattern.match(flag)
        if match:
            return prefix + match[1]
    return flag


def flags(heap_percentage: int, additional: str) -> list[str]:
    """The final flag list: recommended, heap, then the operator's flags.

    An operator flag takes the place of the default of the same name, so the
    file never holds two conflicting values; new flags follow in the order given.
    """
    defaults = [
        *RECOMMENDED_FLAGS[:1],
        f"-XX:InitialRAMPercentage={heap_percentage}",
        f"-XX:MaxRAMPercentage={heap_percentage}",
        *RECOMMENDED_FLAGS[1:],
    ]
    merged = {flag_name(flag): flag for flag in defaults}
    for flag in additional.split():
        merged[flag_name(flag)] = flag  # a dict keeps a replaced key in its place
    return list(merged.values())


def flag_problem(flag: str) -> str | None:
    """Why the JVM (or the heap arithmetic) would refuse ``flag``, if it would."""
    if not flag.startswith("-"):
        return f"{flag!r} is not a JVM flag (flags start with '-')"
    name = flag_name(flag)
    option = re.split(r"[:=/]", flag, maxsplit=1)[0]
    if name in CODE_OPTIONS or option in CODE_OPTIONS or flag.startswith("-Xrun"):
        return f"{flag!r} runs code or commands the charm does not control; remove it"
    owned = name.removeprefix("-D") if name.startswith("-D") else ""
    if any(owned == prefix or owned.startswith(f"{prefix}.") for prefix in OWNED_PROPERTIES):
        return (
            f"{flag!r} would override {owned}, a Trino setting the charm manages "
            "(JVM system properties win over its files); remove it"
        )
    if name in ("-XX:MaxRAMPercentage", "-XX:InitialRAMPercentage"):
        value = flag.partition("=")[2]
        if sizes.percentage(value + "%") is None or not 0 < float(value) <= 100:  # noqa: PLR2004
            return f"{flag!r} needs a percentage between 0 and 100"
    if name in ("-Xmx", "-Xms", "-Xss", "-Xmn") and not sizes.jvm_size(flag[4:]):
        return f"{flag!r} needs a size such as {name}8g"
    return None


def heap_bytes(jvm_flags: list[str], memory_limit: float | None) -> float | None:
    """The heap the JVM will have, or None when it depends on an unknown limit.

    ``-Xmx`` wins over ``-XX:MaxRAMPercentage``, as in the JVM itself.
    """
    by_name = {flag_name(flag): flag for flag in jvm_flags}
    if "-Xmx" in by_name:
        return sizes.jvm_size(by_name["-Xmx"][4:])
    if memory_limit is None:
        return None
    return memory_limit * float(by_name["-XX:MaxRAMPercentage"].partition("=")[2]) / 100
