"""`ldap` (limit 1, we require; glauth-k8s provides): the LDAP server Trino checks passwords on.

The databags are charmlibs-interfaces-ldap's: our leader writes `user` and `group` (the
bind account the provider makes for us: this application, in this model), and the
provider answers with `urls`, `ldaps_urls` (JSON lists), `base_dn`, `starttls`, `bind_dn`,
`bind_password_secret` (a secret with `password`) and `auth_method`. Both sides are
checked with the library's own models (pydantic: imported only when the relation exists).

The library's requirer is not used: it reads the bind password without tracking the
secret's new revisions, so a rotated password would never reach Trino.
"""

from __future__ import annotations

import logging

import ops

from core.security import AccessInputError, Ldap, no_secret_references

logger = logging.getLogger(__name__)

ENDPOINT = "ldap"
# glauth-k8s keeps users as cn=<user>,ou=<group>,ou=users,<base dn>, groups in memberOf.
USER_ATTRIBUTE = "cn"


class LdapNotReadyError(Exception):
    """The provider has not sent what Trino needs yet (a wait, not a mistake)."""


class LdapRelationError(Exception):
    """The provider sent something Trino cannot use; the message names the fix."""


class LdapRelation:
    """Our side of the `ldap` relation."""

    def __init__(self, model: ops.Model):
        self._model = model

    @property
    def relation(self) -> ops.Relation | None:
        """The relation to the LDAP provider, if any."""
        return self._model.get_relation(ENDPOINT)

    def publish(self) -> None:
        """Leader: ask for a bind account named after this application and model."""
        relation = self.relation
        if relation is None or not self._model.unit.is_leader():
            return
        from charmlibs.interfaces.ldap import LdapRequirerData  # noqa: PLC0415  (pydantic)

        request = LdapRequirerData(user=self._model.app.name, group=self._model.name)
        data = {key: str(value) for key, value in request.model_dump().items()}
        if dict(relation.data[self._model.app]) != data:
            relation.data[self._model.app].update(data)

    def server(self, ca: str) -> Ldap | None:
        """The provider's LDAPS server and bind account; None without the relation.

        Raises LdapNotReadyError while the provider has not answered, and
        LdapRelationError when its answer cannot serve Trino.
        """
        relation = self.relation
        if relation is None:
            return None
        provider = relation.app.name if relation.app else "the LDAP provider"
        data = dict(relation.data[relation.app]) if relation.app else {}
        if not data.get("bind_dn") or not data.get("bind_password_secret"):
            raise LdapNotReadyError(f"waiting for {provider} to send the LDAP server (ldap)")
        from charmlibs.interfaces.ldap import LdapProviderData  # noqa: PLC0415  (pydantic)
        from pydantic import ValidationError  # noqa: PLC0415

        try:
            data["bind_password"] = self._model.get_secret(
                id=data["bind_password_secret"]
            ).get_content(refresh=True)["password"]
            offer = LdapProviderData.model_validate(data)
        except (ops.ModelError, KeyError) as error:
            logger.warning("cannot read the ldap bind password: %s", error)
            raise LdapNotReadyError(
                f"waiting for {provider} to grant its bind password secret (ldap)"
            ) from None
        except (ValidationError, ValueError, TypeError) as error:
            logger.warning("unusable ldap data from %s: %s", provider, error)
            raise LdapRelationError(
                f"ldap: {provider} sent data this charm cannot read; check its version"
            ) from None
        if not offer.ldaps_urls:
            raise LdapRelationError(
                f"ldap: {provider} offers no ldaps:// URL and Trino sends passwords to it: "
                f"enable LDAPS on {provider}"
            )
        server = Ldap(
            url=offer.ldaps_urls[0],
            user_base_dn=offer.base_dn,
            bind_dn=offer.bind_dn,
            bind_password=offer.bind_password,
            ca=ca,
            user_attribute=USER_ATTRIBUTE,
        )
        try:
            return no_secret_references(server, f"ldap: {provider}'s data")
        except AccessInputError as error:
            raise LdapRelationError(str(error)) from None
