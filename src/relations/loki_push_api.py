"""`logging` (loki_push_api v1, we require): where Pebble forwards Trino's logs.

Each Loki unit publishes its push URL in its unit data; the Pebble layer itself
is built in `core.observability` and applied by the workload shell.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ops

logger = logging.getLogger(__name__)

ENDPOINT = "logging"


def endpoints(model: ops.Model) -> dict[str, str]:
    """Push URL of every Loki unit on every logging relation, by unit name."""
    found = {}
    for relation in model.relations.get(ENDPOINT, []):
        for unit in relation.units:
            raw = relation.data[unit].get("endpoint")
            if not raw:
                continue  # that unit has not published yet
            try:
                url = json.loads(raw)["url"]
            except (ValueError, KeyError, TypeError):
                logger.warning("ignoring %s: unreadable Loki endpoint %r", unit.name, raw)
                continue
            if isinstance(url, str) and url:
                found[unit.name] = url
    return found
