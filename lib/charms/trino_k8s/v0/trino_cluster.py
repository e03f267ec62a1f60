"""The `trino_cluster` interface: how worker applications join a Trino coordinator.

A coordinator application provides `trino-coordinator`; each worker application requires
it on `trino-worker` (limit 1). The coordinator's leader writes its application databag:

| key | value |
|---|---|
| `discovery-uri` | where workers announce themselves: the coordinator's HTTP address |
| `environment` | Trino `node.environment`; every node of a cluster must share it |
| `catalogs` | JSON: name -> `{"properties": {...}, "files": {path: text}}`, no credential |
| `settings` | JSON: other cluster-wide settings, `{}` for none; `authentication`
  (`password` or absent), `access-control-rules` (the operator's rules, JSON) and `oauth`
  (single sign-on: the OIDC provider's issuer, endpoints, CA and client id, JSON) |
| `retry-policy` | Trino's `retry-policy`: `NONE`, `QUERY` or `TASK` (LIBPATCH 5; absent
  means `NONE`) |
| `secret-id` | a Juju secret granted to the relation, with `shared-secret` (Trino's
  `internal-communication.shared-secret`), `catalog-credentials` (JSON: catalog name ->
  the properties that are credentials), with authentication `password-db` (Trino's
  password.db: bcrypt hashes) and `charm-password` (the charm's own Trino user), with
  single sign-on `oauth-client-secret`, and with an exchange `exchange` (JSON: Trino's
  exchange-manager.properties, keys included; LIBPATCH 5) |

Nothing that is a credential is ever in the databag: it is all in the secret. The library
only reads and writes data; it sets no status and observes no event, so each charm decides
when to publish and what to tell its operator.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import ops

LIBAPI = 0
LIBPATCH = 5

logger = logging.getLogger(__name__)

PROVIDES = "trino-coordinator"
REQUIRES = "trino-worker"
SECRET_LABEL = "trino-cluster"  # noqa: S105  (a label, not a password)
RETRY_POLICIES = ("NONE", "QUERY", "TASK")
# What Trino accepts as node.environment and as discovery.uri (a host, no path).
_ENVIRONMENT = re.compile(r"[a-z0-9][_a-z0-9]*")
_DISCOVERY_URI = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?/?")


@dataclasses.dataclass(frozen=True)
class ClusterCatalog:
    """One catalog as every node writes it."""

    properties: Mapping[str, str]  # every property, credentials included
    credentials: frozenset[str] = frozenset()  # which properties are credentials
    files: Mapping[str, str] = dataclasses.field(default_factory=dict)  # path -> content


@dataclasses.dataclass(frozen=True)
class ClusterOffer:
    """What a coordinator shares with its workers."""

    discovery_uri: str
    environment: str
    shared_secret: str
    catalogs: Mapping[str, ClusterCatalog] = dataclasses.field(default_factory=dict)
    settings: Mapping[str, str] = dataclasses.field(default_factory=dict)
    password_db: str = ""  # every node authenticates the same users
    charm_password: str = ""  # the charm's own user, to drain workers
    oauth_client_secret: str = ""  # single sign-on: every node runs the same authenticators
    retry_policy: str = "NONE"  # every node runs the coordinator's policy
    # exchange-manager.properties, credentials included; empty: no exchange.
    exchange: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def secret_content(self) -> dict[str, str]:
        """The part of the offer that only the secret carries."""
        credentials = {
            name: {key: catalog.properties[key] for key in sorted(catalog.credentials)}
            for name, catalog in sorted(self.catalogs.items())
            if catalog.credentials
        }
        content = {
            "shared-secret": self.shared_secret,
            "catalog-credentials": json.dumps(credentials, sort_keys=True),
        }
        if self.password_db:
            content["password-db"] = self.password_db
            content["charm-password"] = self.charm_password
        if self.oauth_client_secret:
            content["oauth-client-secret"] = self.oauth_client_secret
        if self.exchange:
            content["exchange"] = json.dumps(dict(self.exchange), sort_keys=True)
        return content


@dataclasses.dataclass
class _Databag:
    discovery_uri: str = dataclasses.field(default="", metadata={"alias": "discovery-uri"})
    environment: str = ""
    catalogs: dict[str, Any] = dataclasses.field(default_factory=dict)
    settings: dict[str, str] = dataclasses.field(default_factory=dict)
    secret_id: str = dataclasses.field(default="", metadata={"alias": "secret-id"})
    retry_policy: str = dataclasses.field(default="NONE", metadata={"alias": "retry-policy"})


def _public_catalogs(offer: ClusterOffer) -> dict[str, Any]:
    return {
        name: {
            "properties": {
                key: value
                for key, value in catalog.properties.items()
                if key not in catalog.credentials
            },
            "files": dict(catalog.files),
        }
        for name, catalog in sorted(offer.catalogs.items())
    }


class TrinoClusterProvider:
    """The coordinator side: publish an offer to every related worker application."""

    def __init__(self, model: ops.Model, endpoint: str = PROVIDES):
        self._model = model
        self._endpoint = endpoint
        self._owned: tuple[ops.Secret, dict[str, str]] | None = None  # read once per hook

    @property
    def relations(self) -> list[ops.Relation]:
        """The related worker applications."""
        return list(self._model.relations.get(self._endpoint, []))

    def publish(self, offer: ClusterOffer) -> bool:
        """Share ``offer`` with every worker application (leader only).

        The secret gets a new revision only when its content changes, and a databag
        is written only when it differs, so publishing the same offer twice is free
        of side effects. Returns True when anything was written.
        """
        relations = self.relations
        if not relations:
            return False
        secret, changed = self._secret(offer.secret_content())
        desired = _Databag(
            discovery_uri=offer.discovery_uri,
            environment=offer.environment,
            catalogs=_public_catalogs(offer),
            settings=dict(offer.settings),
            # A secret found by its label may not know its id yet: the owner can ask.
            secret_id=str(secret.id or secret.get_info().id),
            retry_policy=offer.retry_policy,
        )
        for relation in relations:
            if relation.app is None:
                continue
            current = _load(relation, self._model.app)
            if current == desired:
                continue
            if current is None or current.secret_id != desired.secret_id:
                secret.grant(relation)
            relation.save(desired, self._model.app)
            changed = True
        return changed

    def shared_secret(self) -> str:
        """The cluster's shared secret, made once by the leader (empty elsewhere).

        It lives in the same application secret the workers are granted, so every
        node of the cluster reads the same value, and a new leader finds it again.
        """
        owned = self._read()
        if owned is not None:
            return owned[1].get("shared-secret", "")
        if not self._model.unit.is_leader():
            return ""
        import base64  # noqa: PLC0415
        import secrets  # noqa: PLC0415

        # 512 random bytes, base64: what the Trino docs suggest.
        token = base64.b64encode(secrets.token_bytes(512)).decode()
        self._secret({"shared-secret": token, "catalog-credentials": "{}"})
        return token

    def _read(self) -> tuple[ops.Secret, dict[str, str]] | None:
        """The application secret and its content, if it exists (read once per hook)."""
        if self._owned is None:
            try:
                secret = self._model.get_secret(label=SECRET_LABEL)
            except ops.SecretNotFoundError:
                return None
            self._owned = (secret, secret.get_content(refresh=True))
        return self._owned

    def _secret(self, content: dict[str, str]) -> tuple[ops.Secret, bool]:
        """The application secret with ``content``; True when that was a change."""
        owned = self._read()
        if owned is None:
            secret = self._model.app.add_secret(content, label=SECRET_LABEL)
        elif owned[1] == content:
            return owned[0], False
        else:
            secret = owned[0]
            secret.set_content(content)
        self._owned = (secret, content)
        return secret, True


class ClusterNotReadyError(Exception):
    """The worker cannot join yet; the message says why, for the operator."""


class TrinoClusterRequirer:
    """The worker side: read the coordinator's offer."""

    def __init__(self, model: ops.Model, endpoint: str = REQUIRES):
        self._model = model
        self._endpoint = endpoint

    @property
    def relation(self) -> ops.Relation | None:
        """The relation to the coordinator application, if there is one."""
        return self._model.get_relation(self._endpoint)

    def offer(self) -> ClusterOffer:
        """The coordinator's offer; ClusterNotReadyError says why there is none yet."""
        relation = self.relation
        if relation is None or relation.app is None:
            raise ClusterNotReadyError(
                "waiting for a coordinator: `juju integrate <coordinator>:trino-coordinator "
                f"{self._model.app.name}:{self._endpoint}`"
            )
        data = _load(relation, relation.app)
        if data is None or not (data.discovery_uri and data.secret_id):
            raise ClusterNotReadyError(f"waiting for {relation.app.name} to share its address")
        unreadable = ClusterNotReadyError(
            f"{relation.app.name} shares data this charm cannot read: "
            "run the same charm revision on both applications"
        )
        if not isinstance(data.secret_id, str):
            raise unreadable
        try:
            content = self._model.get_secret(id=data.secret_id).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError) as error:
            logger.warning("cannot read the coordinator's secret: %s", error)
            raise ClusterNotReadyError(
                f"waiting for {relation.app.name} to grant its cluster secret"
            ) from error
        try:
            return _offer(data, content)
        except (ValueError, KeyError) as error:
            logger.error("unreadable data from %s: %r", relation.app.name, error)
            raise unreadable from error


def _offer(data: _Databag, content: dict[str, str]) -> ClusterOffer:
    """The offer, if every part has the shape the provider writes; ValueError if not.

    Only shapes are checked here: what the values mean (catalog names, paths, property
    names) is for the charm to check, with the same rules as on the coordinator.
    """
    credentials = json.loads(content.get("catalog-credentials", "{}"))
    if not isinstance(credentials, dict):
        raise ValueError("catalog-credentials is not an object")
    credentials = {
        name: _texts(value, f"credentials of {name}") for name, value in credentials.items()
    }
    if not isinstance(data.catalogs, dict):
        raise ValueError("catalogs is not an object")
    catalogs = {}
    for name, entry in data.catalogs.items():
        if not isinstance(entry, dict):
            raise ValueError(f"catalog {name!r} is not an object")
        secret = credentials.get(name, {})
        catalogs[name] = ClusterCatalog(
            properties={**_texts(entry.get("properties"), f"properties of {name}"), **secret},
            credentials=frozenset(secret),
            files=_texts(entry.get("files", {}), f"files of {name}"),
        )
    if not (
        isinstance(data.discovery_uri, str)
        and _DISCOVERY_URI.fullmatch(data.discovery_uri)
        and isinstance(data.environment, str)
        and _ENVIRONMENT.fullmatch(data.environment)
    ):
        raise ValueError("discovery-uri or environment is not what Trino accepts")
    if data.retry_policy not in RETRY_POLICIES:
        raise ValueError("retry-policy is not NONE, QUERY or TASK")
    return ClusterOffer(
        discovery_uri=data.discovery_uri,
        environment=data.environment,
        shared_secret=content["shared-secret"],
        catalogs=catalogs,
        settings=_texts(data.settings, "settings"),
        password_db=content.get("password-db", ""),
        charm_password=content.get("charm-password", ""),
        oauth_client_secret=content.get("oauth-client-secret", ""),
        retry_policy=data.retry_policy,
        exchange=_texts(json.loads(content.get("exchange", "{}")), "exchange"),
    )


def _texts(value: Any, what: str) -> dict[str, str]:
    """A JSON object whose keys and values are all text, or ValueError."""
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise ValueError(f"{what} is not an object of text values")
    return dict(value)


def _load(relation: ops.Relation, app: ops.Application) -> _Databag | None:
    if not relation.data[app]:
        return None
    try:
        return relation.load(_Databag, app)
    except (ValueError, TypeError) as error:
        logger.error("unreadable %s data from %s: %s", relation.name, app.name, error)
        return None
