"""The `oauth` relation (requirer): Trino as a client of an OIDC provider, e.g. Hydra.

charmlibs' `OAuthRequirer` speaks the protocol: it checks what we publish against the
interface's requirer schema and reads the provider's databag and client secret (a Juju
secret the provider owns and rotates). This module says what Trino registers (its
callback, scopes, grant types) and turns the provider's answer into
`core.oauth.OAuthProvider`, or a text saying what is missing. The library (jsonschema)
is imported only when the relation exists.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import ops

if TYPE_CHECKING:
    from charmlibs.interfaces.oauth import OAuthRequirer

    from core.oauth import OAuthProvider

logger = logging.getLogger(__name__)

ENDPOINT = "oauth"
GRANT_TYPES = ("authorization_code",)
# Texts starting so are a wait for the provider, not an operator mistake.
WAITING_PREFIX = "waiting for "


@functools.cache
def _guarded_requirer() -> type[OAuthRequirer]:
    """The library's requirer, except that provider data off the schema fails no hook.

    The library validates the provider's databag in its own relation-changed handler and
    raises on data off the schema, which would fail the hook. Here it is logged; the
    charm's own reading (`OAuthRelation.provider`) then says what is wrong.
    """
    from charmlibs.interfaces.oauth import DataValidationError, OAuthRequirer  # noqa: PLC0415

    class GuardedRequirer(OAuthRequirer):
        def _on_relation_changed_event(self, event: ops.RelationChangedEvent) -> None:
            try:
                super()._on_relation_changed_event(event)
            except DataValidationError:
                logger.warning("the OAuth provider's data does not match the oauth schema")

    return GuardedRequirer


class OAuthRelation:
    """Our side of the oauth relation (limit 1)."""

    def __init__(self, charm: ops.CharmBase, endpoint: str = ENDPOINT):
        self._model = charm.model
        self._endpoint = endpoint
        self.relation = charm.model.get_relation(endpoint)
        self._requirer: OAuthRequirer | None = None
        self._read: list[OAuthProvider | str | None] = []  # read once per hook
        if self.relation is not None:
            self._requirer = _guarded_requirer()(charm, relation_name=endpoint)

    @property
    def _sender(self) -> str:
        relation = self.relation
        return relation.app.name if relation is not None and relation.app else "the provider"

    def publish(self, redirect_uri: str) -> None:
        """Leader: register Trino as a client whose callback is ``redirect_uri``."""
        if self._requirer is None or not self._model.unit.is_leader():
            return
        from charmlibs.interfaces.oauth import (  # noqa: PLC0415
            ClientConfig,
            ClientConfigError,
            DataValidationError,
        )

        from core.oauth import SCOPES  # noqa: PLC0415

        config = ClientConfig(redirect_uri, " ".join(SCOPES), list(GRANT_TYPES))
        try:
            self._requirer.update_client_config(config)
        except (ClientConfigError, DataValidationError) as error:
            logger.warning("cannot register %s with the OAuth provider: %s", redirect_uri, error)

    def provider(self) -> OAuthProvider | str | None:
        """The provider's settings; a text when they are missing or unusable; None: no relation.

        A text starting with `WAITING_PREFIX` is a wait for the provider; any other is
        a problem the operator must fix.
        """
        if not self._read:
            self._read.append(self._provider())
        return self._read[0]

    def _provider(self) -> OAuthProvider | str | None:
        if self._requirer is None:
            return None
        from charmlibs.interfaces.oauth import DataValidationError  # noqa: PLC0415

        from core.oauth import OAuthProvider, problem  # noqa: PLC0415

        sender = self._sender
        waiting = f"{WAITING_PREFIX}{sender} to register {self._model.app.name} as an OAuth client"
        try:
            info = self._requirer.get_provider_info()
        except DataValidationError:
            return (
                f"oauth: {sender} sent data that does not match the oauth interface; "
                f"check its revision or `juju remove-relation {self._model.app.name}:oauth "
                f"{sender}`"
            )
        except (ops.SecretNotFoundError, ops.ModelError, KeyError) as error:
            logger.warning("cannot read the OAuth client secret: %s", error)
            return f"{WAITING_PREFIX}{sender} to grant the client secret"
        if info is None or not info.client_id:
            return waiting
        provider = OAuthProvider(
            issuer=info.issuer_url,
            authorization_endpoint=info.authorization_endpoint,
            token_endpoint=info.token_endpoint,
            jwks_endpoint=info.jwks_endpoint,
            userinfo_endpoint=info.userinfo_endpoint or "",
            client_id=info.client_id,
            client_secret=info.client_secret or "",
            ca="".join(f"{pem.strip()}\n" for pem in _ca_chain(info.ca_chain)),
        )
        return problem(provider, sender) or provider


def _ca_chain(value: object) -> list[str]:
    """The provider's CA chain: a list of PEM texts (the schema's form), or one text."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [pem for pem in value if isinstance(pem, str) and pem.strip()]
    return []
