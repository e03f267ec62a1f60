"""Parsing of the size and duration formats operators type into config options.

Three dialects meet here: Trino's (airlift ``DataSize``/``Duration``: ``20GB``,
``2m``), Kubernetes quantities (``8Gi``, ``500m``) and JVM flags (``-Xmx8g``).
Each parser returns ``None`` for text it does not accept, so callers can turn
that into a message naming the option.
"""

from __future__ import annotations

import re

_TRINO_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(B|kB|MB|GB|TB|PB)")
_TRINO_SIZE_UNITS = {"B": 0, "kB": 1, "MB": 2, "GB": 3, "TB": 4, "PB": 5}
_TRINO_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h|d)")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
_K8S_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?")
_K8S_FACTORS = {
    None: 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_JVM_SIZE = re.compile(r"([0-9]+)([kKmMgGtT]?)")
_JVM_FACTORS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def trino_size(text: str) -> int | None:
    """Bytes in a Trino data size such as ``20GB`` (units are powers of 1024)."""
    match = _TRINO_SIZE.fullmatch(text)
    if not match:
        return None
    return int(float(match[1]) * 1024 ** _TRINO_SIZE_UNITS[match[2]])


_DURATION_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400,
}  # fmt: skip


def trino_duration_ok(text: str) -> bool:
    """Whether Trino accepts ``text`` as a duration (``90s``, ``2m``, ``1.5h``)."""
    return _TRINO_DURATION.fullmatch(text) is not None


def trino_duration_seconds(text: str) -> float | None:
    """Seconds in a Trino duration (``2m`` is 120)."""
    match = _TRINO_DURATION.fullmatch(text)
    return float(match[1]) * _DURATION_SECONDS[match[2]] if match else None


def percentage(text: str) -> float | None:
    """The number in ``30%``."""
    match = _PERCENT.fullmatch(text)
    return float(match[1]) if match else None


def k8s_quantity(text: str) -> float | None:
    """The value of a Kubernetes quantity: bytes for memory, cores for CPU."""
    match = _K8S_QUANTITY.fullmatch(text)
    if not match:
        return None
    return float(match[1]) * _K8S_FACTORS[match[2]]


def jvm_size(text: str) -> int | None:
    """Bytes in a JVM size argument such as the ``8g`` of ``-Xmx8g``."""
    match = _JVM_SIZE.fullmatch(text)
    if not match:
        return None
    return int(match[1]) * _JVM_FACTORS[match[2].lower()]


def human(size: float) -> str:
    """A size in the Trino notation, rounded for messages (``5.6GB``)."""
    for unit in ("PB", "TB", "GB", "MB", "kB"):
        factor = 1024 ** _TRINO_SIZE_UNITS[unit]
        if size >= factor:
            return f"{size / factor:.4g}{unit}"
    return f"{int(size)}B"
