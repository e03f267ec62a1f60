"""Our requirer side of the `s3` interface, v0 and v1 providers alike.

v0 providers send the keys as plain relation data; v1 providers, seeing our
`requested-secrets`, put them in the secret named by `secret-extra`. Either way
the charm gets one `ObjectStorage`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging

import ops

from core import truststore
from core.lakehouse import ObjectStorage
from relations.postgresql_client import key, save_if_changed

logger = logging.getLogger(__name__)

ENDPOINT = "s3-credentials"
REQUESTED_SECRETS = ("access-key", "secret-key")
LIB_VERSION = "1.0"  # the s3 v1 protocol this module speaks, as `{LIBAPI}.{LIBPATCH}`


@dataclasses.dataclass
class BucketRequest:
    """What we write in our application databag (v1 requirers must say `lib-version`)."""

    bucket: str
    requested_secrets: list[str] = dataclasses.field(
        default_factory=lambda: list(REQUESTED_SECRETS), metadata={"alias": "requested-secrets"}
    )
    lib_version: str = dataclasses.field(default=LIB_VERSION, metadata={"alias": "lib-version"})


@dataclasses.dataclass
class BucketOffer:
    """What the provider writes (the keys we read)."""

    bucket: str = ""
    access_key: str = key("access-key", secret=True)
    secret_key: str = key("secret-key", secret=True)
    endpoint: str = ""
    region: str = ""
    path: str = ""
    uri_style: str = key("s3-uri-style")
    secret_extra: str = key("secret-extra")
    # JSON list of the CA chain's certificates (PEM, or base64 of PEM), for an endpoint
    # with its own CA (MinIO, Ceph).
    tls_ca_chain: str = key("tls-ca-chain")


class S3Requirer:
    """One `s3` endpoint of limit 1: `s3-credentials` (the lakehouse) or `exchange-s3`."""

    def __init__(self, model: ops.Model, endpoint: str = ENDPOINT):
        self._model = model
        self._endpoint = endpoint
        self.relation = model.get_relation(endpoint)

    def request(self, bucket: str) -> None:
        """Leader: ask for a bucket, keys as a secret (a v0 provider ignores that)."""
        if self.relation is not None and self._model.unit.is_leader():
            save_if_changed(self.relation, BucketRequest(bucket), self._model.app)

    def storage(self) -> ObjectStorage | str | None:
        """The bucket and its keys, what the relation waits for, or None without one."""
        if self.relation is None or self.relation.app is None:
            return None
        app = self.relation.app.name
        offer = self.relation.load(BucketOffer, self.relation.app, decoder=str)
        keys = {"access-key": offer.access_key, "secret-key": offer.secret_key}
        if offer.secret_extra:
            try:
                content = self._model.get_secret(id=offer.secret_extra).get_content(refresh=True)
            except ops.ModelError as error:
                logger.warning("cannot read the s3 secret of %s: %s", app, error)
                return f"{self._endpoint} relation with {app}: its secret cannot be read yet"
            keys = {name: content.get(name, "") or keys[name] for name in keys}
        missing = [name for name in ("bucket",) if not offer.bucket] + [
            name for name, value in keys.items() if not value
        ]
        if missing:
            return (
                f"{self._endpoint} relation with {app}: waiting for {', '.join(missing)} "
                f"(`juju run {app}/leader sync-s3-credentials` if it is an s3-integrator)"
            )
        ca_chain = _ca_chain(offer.tls_ca_chain)
        if ca_chain is None:
            return (
                f"{self._endpoint} relation with {app}: its tls-ca-chain holds no PEM "
                f"certificate; fix it on {app} (`juju config {app} tls-ca-chain=...`)"
            )
        return ObjectStorage(
            bucket=offer.bucket,
            access_key=keys["access-key"],
            secret_key=keys["secret-key"],
            endpoint=offer.endpoint,
            region=offer.region,
            path=offer.path,
            uri_style=offer.uri_style.strip().lower(),
            ca_chain=ca_chain,
        )


def _ca_chain(raw: str) -> str | None:
    """The chain as PEM text ("" when none is given), or None when it holds no certificate."""
    if not raw.strip():
        return ""
    try:
        items = json.loads(raw)
    except ValueError:
        items = [raw]  # one PEM text, not a JSON list
    if not isinstance(items, list):
        items = [items]
    pems = []
    for item in items:
        text = item if isinstance(item, str) else ""
        if "-----BEGIN" not in text:  # the interface's spelling: base64 of the PEM
            try:
                text = base64.b64decode(text, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                text = ""
        pems.append(truststore.pem_blocks(text))
    return "".join(pems) if all(pems) else None
