"""Reading the Juju secrets that catalogs and users refer to."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import ops

from core.catalogs import OPERATOR_SOURCES, Catalog
from core.security import GROUP_SECRET_OPTION, LDAP_BIND_SECRET_OPTION, USER_SECRET_OPTION
from relations.peers import ENDPOINT as PEERS

logger = logging.getLogger(__name__)

# A secret id in relation data: `secret:<id>` or `secret://<model>/<id>` (JSON-quoted or not).
_SECRET_ID = re.compile(r"secret:(?://[^/\s\"]+/)?([0-9a-z]{20})")


def fetch(model: ops.Model, ids: Iterable[str]) -> dict[str, dict[str, str] | str]:
    """Each secret's latest content, or why it cannot be read (with the fix).

    ``refresh=True`` makes the unit track the newest revision, so a rotated
    password reaches Trino on the next `secret-changed`.
    """
    found: dict[str, dict[str, str] | str] = {}
    for secret_id in sorted(set(ids)):
        grant = f"`juju grant-secret {secret_id} {model.app.name}`"
        try:
            found[secret_id] = model.get_secret(id=secret_id).get_content(refresh=True)
        except ops.SecretNotFoundError:
            found[secret_id] = f"secret {secret_id} does not exist or is not granted: run {grant}"
        except ops.ModelError as error:
            logger.warning("cannot read secret %s: %s", secret_id, error)
            found[secret_id] = f"secret {secret_id} cannot be read (revoked?): run {grant}"
    return found


def for_catalogs(
    model: ops.Model, catalogs: Iterable[Catalog]
) -> tuple[dict[str, dict[str, str] | str], dict[str, str]]:
    """The secrets these catalogs name, and why an operator's catalog may not use some.

    A catalog writes a secret's values into a connection to any host, so a catalog from
    catalog-config or add-catalog may use only a secret made for it. Refused, by id: the
    charm's own secrets (any secret this unit owns, or this application's on the leader:
    the cluster's shared secret, the charm user, client users, the TLS key), every secret
    a related application shared (its id is in relation data) and the user-secret-id
    secret. A relation's own catalog still uses the login its relation gave.
    """
    catalogs = list(catalogs)
    operator_ids = {c.secret for c in catalogs if c.secret and c.source in OPERATOR_SOURCES}
    refused = _not_for_catalogs(model, operator_ids) if operator_ids else {}
    wanted = {
        c.secret
        for c in catalogs
        if c.secret and not (c.source in OPERATOR_SOURCES and c.secret in refused)
    }
    return fetch(model, wanted), refused


def unique_id(secret_id: str) -> str:
    """The id alone: `secret:x`, `secret://<model>/x` and `x` name the same secret."""
    return re.split(r"[:/]", secret_id.strip())[-1]


def _not_for_catalogs(model: ops.Model, ids: Iterable[str]) -> dict[str, str]:
    use = (
        "use a secret you made for the catalog (`juju add-secret`, then "
        f"`juju grant-secret <secret> {model.app.name}`)"
    )
    shared = _shared_by_relations(model)
    options = {
        unique_id(value): option
        for option in (USER_SECRET_OPTION, LDAP_BIND_SECRET_OPTION, GROUP_SECRET_OPTION)
        if (value := str(model.config.get(option, "")).strip())
    }
    refused = {}
    for secret_id in ids:
        key = unique_id(secret_id)
        if key in shared:
            refused[secret_id] = (
                f"secret {secret_id} was shared by {shared[key]}, not for catalogs; {use}"
            )
        elif key in options:
            refused[secret_id] = (
                f"secret {secret_id} is the {options[key]} secret, not for catalogs; {use}"
            )
        elif _owned(model, secret_id):
            refused[secret_id] = (
                f"secret {secret_id} belongs to this charm, not to catalogs; {use}"
            )
    return refused


def _shared_by_relations(model: ops.Model) -> dict[str, str]:
    """Secret ids that related applications put in their databags, and who shared each."""
    shared = {}
    for endpoint, relations in model.relations.items():
        if endpoint == PEERS:  # the peer databag holds the operator's own catalog secrets
            continue
        for relation in relations:
            if relation.app is None:
                continue
            for value in relation.data[relation.app].values():
                for key in _SECRET_ID.findall(value):
                    shared[key] = f"{relation.app.name} on the {endpoint} relation"
    return shared


def _owned(model: ops.Model, secret_id: str) -> bool:
    """Whether this unit (or, on the leader, this application) owns the secret.

    Only an owner may read a secret's info; a non-leader cannot tell an application
    secret apart, but it runs no coordinator (the leader does, and refuses it).
    """
    try:
        model.get_secret(id=secret_id).get_info()
    except ops.ModelError:  # SecretNotFoundError included: not ours, or not there
        return False
    return True
