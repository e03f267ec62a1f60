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
