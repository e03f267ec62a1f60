"""YAML the operator and relations hand us, read with libyaml when PyYAML has it.

PyYAML's pure-Python safe loader is the slowest step of a hook with many catalogs
(50 catalogs: about half the hook's own time); its C loader reads the same safe
subset several times faster. `yaml` itself is already imported by ops.
"""

from __future__ import annotations

from typing import Any

import yaml

YAMLError = yaml.YAMLError
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """The document in ``text`` (plain data only: the loader is a safe one)."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506  (CSafeLoader or SafeLoader)
