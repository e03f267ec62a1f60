"""Fault-tolerant execution: Trino's retry policy and the exchange it spools to on S3.

With `retry-policy=TASK` every task writes its output to an exchange (Trino's
`filesystem` exchange manager on an S3 bucket), so a task lost with its worker
runs again elsewhere from there. `QUERY` runs a failed query again; it needs the
exchange only for results over Trino's 32MB `exchange.deduplication-buffer-size`.
The bucket comes from an `s3` relation of its own, `exchange-s3`, so spool files
never mix with the lakehouse's tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from core.lakehouse import ObjectStorage

ENDPOINT = "exchange-s3"
NONE, QUERY, TASK = "NONE", "QUERY", "TASK"
# exchange-manager.properties: Trino's names (plugin/trino-exchange-filesystem, 476 to 483).
MANAGER = "exchange-manager.name"
PREFIX = "exchange."
ACCESS_KEY = "exchange.s3.aws-access-key"
SECRET_KEY = "exchange.s3.aws-secret-key"  # noqa: S105  (a property name)
QUERY_BUFFER = "32MB"  # Trino's default exchange.deduplication-buffer-size


@dataclasses.dataclass(frozen=True)
class FaultTolerance:
    """The policy a node runs, its exchange, or what holds both back."""

    policy: str = NONE
    # exchange-manager.properties (credentials included); empty: no exchange.
    exchange: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    problem: str = ""  # the operator must act; nothing is applied until then
    waiting: str = ""  # the exchange is on its way; nothing is applied until then


def integrate(app: str) -> str:
    """The command that gives ``app`` an exchange bucket."""
    return f"`juju integrate {app}:{ENDPOINT} s3-integrator`"


def exchange_properties(storage: ObjectStorage) -> dict[str, str]:
    """Trino's filesystem exchange manager on the bucket (under the provider's path)."""
    properties = {
        MANAGER: "filesystem",
        # s3://bucket or s3://bucket/path, as for the lakehouse's warehouse.
        "exchange.base-directories": storage.warehouse,
        # The AWS SDK needs a region even for S3-compatible stores that ignore it.
        "exchange.s3.region": storage.region or "us-east-1",
        "exchange.s3.path-style-access": "true" if storage.uri_style == "path" else "false",
        ACCESS_KEY: storage.access_key,
        SECRET_KEY: storage.secret_key,
    }
    if storage.endpoint:
        properties["exchange.s3.endpoint"] = storage.endpoint
    return properties


def coordinator(policy: str, storage: ObjectStorage | str | None, app: str) -> FaultTolerance:
    """What a coordinator runs: ``storage`` is the bucket, what it waits for, or None."""
    if policy == NONE:
        return FaultTolerance()  # an exchange related early waits for its policy
    if storage is None:
        if policy == TASK:
            return FaultTolerance(
                policy,
                problem=f"retry-policy=TASK needs an exchange bucket: {integrate(app)} "
                f"(or `juju config {app} retry-policy=QUERY`)",
            )
        return FaultTolerance(policy)
    if isinstance(storage, str):
        return FaultTolerance(policy, waiting=storage)
    if storage.ca_chain:
        return FaultTolerance(
            policy,
            problem=f"{ENDPOINT}: an endpoint with its own CA (tls-ca-chain) is not supported "
            "for the exchange; use an endpoint whose certificate the JVM trusts",
        )
    return FaultTolerance(policy, exchange_properties(storage))


def worker(policy: str, exchange: Mapping[str, str], coordinator_app: str) -> FaultTolerance:
    """What a worker runs: its coordinator's policy and exchange, once checked."""
    unknown = sorted(key for key in exchange if key != MANAGER and not key.startswith(PREFIX))
    if unknown:
        return FaultTolerance(
            problem=f"{coordinator_app} shares exchange properties this charm refuses "
            f"({', '.join(unknown)}): run the same charm revision on both applications"
        )
    return FaultTolerance(policy, dict(exchange))


def query_advice(fault_tolerance: FaultTolerance, app: str) -> str:
    """What a coordinator says while QUERY runs without an exchange; empty otherwise."""
    if fault_tolerance.policy != QUERY or fault_tolerance.exchange:
        return ""
    return f"retry-policy=QUERY: results over {QUERY_BUFFER} fail until {integrate(app)}"
