"""Writing relation data only when it changes.

Every `relation-set` wakes the other side up with a relation-changed hook, so a
hook with nothing new to say must not write, even the same values.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping


def update(databag: MutableMapping[str, str], values: Mapping[str, str]) -> bool:
    """Set the keys whose value differs; True if anything was written."""
    changed = False
    for key, value in values.items():
        if databag.get(key) != value:
            databag[key] = value
            changed = True
    return changed
