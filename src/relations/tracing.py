"""`tracing` (limit 1, we require): Trino's OpenTelemetry exporter endpoint.

`charmlibs-interfaces-tracing` does the protocol (the leader asks for an OTLP
gRPC receiver, the provider answers with its address). It imports pydantic,
so it is loaded only when a tracing relation exists; without one, tracing is
off and the hook pays nothing.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import ops

if TYPE_CHECKING:
    from charmlibs.interfaces.tracing import TracingEndpointRequirer

logger = logging.getLogger(__name__)

ENDPOINT = "tracing"
PROTOCOL = "otlp_grpc"  # Trino's default exporter protocol (grpc)
REQUEST = json.dumps([PROTOCOL])  # how the library writes the requested receivers


class Tracing:
    """The requirer when related, else nothing."""

    def __init__(self, charm: ops.CharmBase):
        self._requirer: TracingEndpointRequirer | None = None
        if charm.model.relations.get(ENDPOINT):
            from charmlibs.interfaces.tracing import (  # noqa: PLC0415  (lazy: pydantic)
                TracingEndpointRequirer,
            )

            # Protocols are requested here, not through the constructor: the library
            # clears and rewrites the databag on every hook, two relation-sets each time.
            self._requirer = TracingEndpointRequirer(charm, relation_name=ENDPOINT)
            if charm.unit.is_leader():
                for relation in self._requirer.relations:
                    if relation.data[charm.app].get("receivers") != REQUEST:
                        self._requirer.request_protocols([PROTOCOL], relation)

    def endpoint(self) -> str:
        """The OTLP gRPC receiver, or empty while there is none."""
        if self._requirer is None or not self._requirer.is_ready():
            return ""
        from charmlibs.interfaces.tracing import ProtocolNotRequestedError  # noqa: PLC0415

        try:
            return self._requirer.get_endpoint(PROTOCOL) or ""
        except (ProtocolNotRequestedError, ops.ModelError) as error:
            logger.info("no tracing endpoint yet: %s", error)
            return ""
