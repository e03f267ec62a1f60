"""How clients reach Trino and who they are: ingress, TLS, users, rules, client relations.

This gathers what Juju knows about access (config, secrets, three relations) into
`core.plan.Security`, or the operator's problems with it; the pure decisions live in
`core.security`. The charm calls it from its snapshot and its reconcile.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import ops

import juju_secrets
from charms.trino_k8s.v0.trino_cluster import ClusterOffer
from core import security
from core.catalogs import CatalogSet
from core.plan import CHARM_USER, HTTP_PORT, HTTPS_PORT, PASSWORD_DB, Security
from relations.ingress import IngressRequest, IngressRequirer, UnitAddress
from relations.ldap import LdapNotReadyError, LdapRelation, LdapRelationError
from relations.oauth import WAITING_PREFIX, OAuthRelation
from relations.tls import TlsCertificate, TlsMaterial, unit_names
from relations.trino_catalog import CatalogInfo, TrinoCatalogProvider
from workload import Credentials, Workload

if TYPE_CHECKING:
    from core.oauth import OAuthProvider

logger = logging.getLogger(__name__)

CHARM_USER_LABEL = "trino-charm-user"
PASSWORD_SETTING = "password"  # noqa: S105  (a mode name)
OAUTH_SETTING = "oauth"
# Not an operator mistake: the certificate is on its way.
WAITING_FOR_CERTIFICATE = f"{WAITING_PREFIX}the certificate before turning passwords on"


class Access:
    """The access side of one unit."""

    def __init__(self, charm: ops.CharmBase, workload: Workload):
        self._charm = charm
        self._model = charm.model
        self._workload = workload
        self.ingress = IngressRequirer(charm.model)
        self.tls = TlsCertificate(charm)
        self.clients = TrinoCatalogProvider(charm.model)
        self.oauth = OAuthRelation(charm)
        self.ldap = LdapRelation(charm.model)
        self._tls_material: list[TlsMaterial | None] = []  # read once per hook
        self._charm_user: tuple[ops.Secret | None, dict[str, str]] | None = None

    # What this unit knows.

    @property
    def tls_material(self) -> TlsMaterial | None:
        """This unit's keystore and CA, once signed."""
        if not self._tls_material:
            self._tls_material.append(self.tls.material())
        return self._tls_material[0]

    def _charm_user_secret(self) -> tuple[ops.Secret | None, dict[str, str]]:
        """The charm user's app secret and its content, read once per hook."""
        if self._charm_user is None:
            try:
                secret = self._model.get_secret(label=CHARM_USER_LABEL)
                self._charm_user = (secret, secret.get_content(refresh=True))
            except ops.SecretNotFoundError:
                self._charm_user = (None, {})
        return self._charm_user

    def charm_password(self) -> str:
        """The charm user's password, made once by the leader and kept in an app secret."""
        secret, content = self._charm_user_secret()
        if "password" in content or not self._model.unit.is_leader():
            return content.get("password", "")
        import secrets  # noqa: PLC0415

        content = {"password": secrets.token_urlsafe(32)}
        if secret is None:
            secret = self._model.app.add_secret(content, label=CHARM_USER_LABEL)
        else:
            secret.set_content(content)
        self._charm_user = (secret, content)
        return content["password"]

    def _password_db(self, users: dict[str, str]) -> str:
        """password.db for ``users``, kept with a digest in the charm user's secret.

        bcrypt is slow on purpose: a hook whose users did not change reuses the last
        file (found by the digest) instead of checking every hash again.
        """
        secret, content = self._charm_user_secret()
        digest = security.users_digest(users, content.get("password", ""))
        if content.get("users-digest") == digest and content.get("password-db"):
            return content["password-db"]
        current = content.get("password-db") or self._workload.read(PASSWORD_DB)
        password_db = security.password_db(users, current)
        if secret is not None and self._model.unit.is_leader():
            content = {**content, "users-digest": digest, "password-db": password_db}
            secret.set_content(content)
            self._charm_user = (secret, content)
        return password_db

    def _operator_users(self) -> dict[str, str]:
        secret_id = str(self._charm.config.get(security.USER_SECRET_OPTION, "")).strip()
        if not secret_id:
            return {}
        content = juju_secrets.fetch(self._model, [secret_id])[secret_id]
        return security.parse_users(content, secret_id)

    def _option(self, name: str) -> str:
        return str(self._charm.config.get(name, "")).strip()

    def _ldap_server(self) -> security.Ldap | None:
        """The LDAP server: the `ldap` relation's or the options' (never both)."""
        ca = security.checked_ca(self._option(security.LDAP_CA_OPTION))
        options = {name: self._option(name) for name in security.LDAP_OPTIONS}
        relation = self.ldap.relation
        if relation is not None and options[security.LDAP_URL_OPTION]:
            raise security.AccessInputError(
                f"{security.LDAP_URL_OPTION} and the ldap relation both name an LDAP server: "
                f"`juju config {self._model.app.name} --reset {security.LDAP_URL_OPTION}` or "
                f"`juju remove-relation {self._model.app.name}:ldap "
                f"{relation.app.name if relation.app else '<provider>'}`"
            )
        if relation is not None:
            try:
                return self.ldap.server(ca)
            except LdapRelationError as error:
                raise security.AccessInputError(str(error)) from None
        secret_id = options[security.LDAP_BIND_SECRET_OPTION]
        bind = juju_secrets.fetch(self._model, [secret_id])[secret_id] if secret_id else None
        server = security.ldap_from_options(options, bind, ca)
        if server is None and ca:
            raise security.AccessInputError(
                f"{security.LDAP_CA_OPTION}: unused without {security.LDAP_URL_OPTION} or the "
                f"ldap relation: set one or reset {security.LDAP_CA_OPTION}"
            )
        return server

    def _groups(self) -> str:
        secret_id = self._option(security.GROUP_SECRET_OPTION)
        if not secret_id:
            return ""
        content = juju_secrets.fetch(self._model, [secret_id])[secret_id]
        return security.parse_groups(content, secret_id)

    def _operator_rules(self) -> dict:
        return security.operator_rules(str(self._charm.config.get(security.RULES_OPTION, "")))

    def secure_path(self) -> security.SecurePath:
        """What makes passwords safe here: HTTPS on Trino, or an https ingress URL."""
        return security.SecurePath(
            https=self.tls_material is not None,
            ingress_tls=self.ingress.url().startswith("https://"),
        )

    def tls_problem(self) -> str:
        """The TLS provider sent a certificate that does not parse: say so, never fall back."""
        if self.tls_material is not None or not (provider := self.tls.unreadable_from):
            return ""
        return (
            f"certificates: {provider} sent a certificate that does not parse; HTTPS keeps "
            f"the current one. Have it issue a new one or `juju remove-relation "
            f"{self._model.app.name}:certificates {provider}`"
        )

    # The snapshot.

    def coordinator_security(self) -> Security | list[str]:
        """The coordinator's security, or what the operator must fix first."""
        problems = [problem] if (problem := self.tls_problem()) else []
        rules, users, ldap, groups = {}, {}, None, ""
        try:
            rules = self._operator_rules()
        except security.AccessInputError as error:
            problems.append(str(error))
        try:
            users = self._operator_users()
        except security.AccessInputError as error:
            problems.append(str(error))
            users = {}
        provider = self.oauth.provider()
        if isinstance(provider, str):
            problems.append(provider)  # nothing applied: Trino keeps its last good files
            provider = None
        try:
            ldap = self._ldap_server()
        except (security.AccessInputError, LdapNotReadyError) as error:
            problems.append(str(error))
        try:
            groups = self._groups()
        except security.AccessInputError as error:
            problems.append(str(error))
        passwords = bool(users) or ldap is not None or self.ldap.relation is not None
        # Single sign-on alone still turns passwords on: the charm's own user drains workers.
        authenticated = passwords or provider is not None
        clients = self.clients.users() if authenticated else {}
        clash = security.reserved_user_problem(users, {CHARM_USER, *clients})
        if clash:
            problems.append(clash)
        source = (
            security.USER_SECRET_OPTION
            if users
            else ("ldap" if self.ldap.relation else security.LDAP_URL_OPTION)
        )
        problems += self._path_problems(source if passwords else "", bool(groups), provider)
        if problems:
            return problems
        material = self.tls_material
        password_db = ""
        charm_password = self.charm_password() if authenticated else ""
        if authenticated and charm_password:  # a standby before the leader made it: none
            password_db = self._password_db({**users, **clients, CHARM_USER: charm_password})
        return Security(
            password_db=password_db,
            charm_password=charm_password,
            keystore=material.keystore if material else "",
            process_forwarded=self.ingress.relation is not None,
            operator_rules=rules,
            ldap=ldap if password_db else None,
            group_file=groups if password_db else "",
            oauth=provider,
        )

    def _path_problems(
        self, passwords: str, groups: bool, provider: OAuthProvider | None
    ) -> list[str]:
        """Combinations that would leave a path without authentication, refused.

        ``passwords`` names what turns passwords on (empty: nothing does). Single
        sign-on, like passwords, needs HTTPS: Trino refuses it over plain HTTP.
        """
        if groups and not passwords and provider is None:
            return [
                f"{security.GROUP_SECRET_OPTION}: groups need authentication, or any client "
                f"may claim any user: set {security.USER_SECRET_OPTION} or relate ldap"
            ]
        path = self.secure_path()
        if not (passwords or provider) or path.secure:
            return []
        if self.tls.related:
            return [WAITING_FOR_CERTIFICATE]
        fix = (
            f"`juju integrate {self._model.app.name}:certificates <tls provider>` "
            "(or an ingress serving https)"
        )
        problems = [f"{passwords}: passwords need a secure path: {fix}"] if passwords else []
        if provider is not None:
            problems.append(f"oauth: single sign-on needs HTTPS: {fix}")
        return problems

    def worker_security(self, offer: ClusterOffer, coordinator: str) -> Security | list[str]:
        """A worker runs its coordinator's authentication and rules, once it checked them.

        Its own HTTPS comes from its own certificates relation; without one, only a
        TLS-terminating proxy may send a password (so the charm's drain on localhost
        can authenticate), never a bare header. Authentication the coordinator turns on
        without the users to check is refused: the worker would run with none.
        """
        problems = [problem] if (problem := self.tls_problem()) else []
        fix = "run the same charm revision on both applications"
        authentication = offer.settings.get("authentication", "")
        password = authentication == PASSWORD_SETTING
        if authentication and not password:
            problems.append(
                f"{coordinator} asks for authentication {authentication!r}, which this charm "
                f"does not know: {fix}"
            )
        if password and not (offer.password_db and offer.charm_password):
            problems.append(
                f"{coordinator} turns password authentication on but shares no password "
                f"database: {fix}"
            )
        try:
            rules = security.operator_rules(offer.settings.get(security.RULES_OPTION, ""))
        except security.AccessInputError as error:
            problems.append(f"{coordinator} shares rules this charm refuses ({error})")
            rules = {}
        provider = _shared_provider(offer, coordinator, password)
        if isinstance(provider, str):
            problems.append(f"{provider}: {fix}")
            provider = None
        if problems:
            return problems
        material = self.tls_material
        return Security(
            password_db=offer.password_db if password else "",
            charm_password=offer.charm_password if password else "",
            keystore=material.keystore if material else "",
            process_forwarded=password and material is None,
            operator_rules=rules,
            oauth=provider,
        )

    # What the charm publishes and uses.

    def settings(self, node: Security) -> dict[str, str]:
        """The cluster-wide modes a coordinator hands its workers.

        Workers check passwords against the coordinator's password file alone (the
        charm's own user drains them with it): clients, LDAP users included, log in at
        the coordinator, and a worker needs neither the LDAP server nor its bind account.
        """
        settings = {}
        if node.password_db:
            settings["authentication"] = PASSWORD_SETTING
        if node.oauth is not None:  # workers run the same authenticators
            from core import oauth  # noqa: PLC0415  (only with single sign-on)

            settings[OAUTH_SETTING] = oauth.shared(node.oauth)
        rules = str(self._charm.config.get(security.RULES_OPTION, "")).strip()
        if rules:
            settings[security.RULES_OPTION] = rules
        return settings

    def credentials(self, node: Security) -> Credentials | None:
        """How the charm authenticates to its own Trino (None: authentication is off)."""
        charm_password = node.charm_password
        if not node.password_db or not charm_password:
            return None
        material = self.tls_material
        if material is not None and node.keystore:
            host = unit_names(self._model.unit.name, self._model.app.name, self._model.name)[0]
            return Credentials(charm_password, f"https://{host}:{HTTPS_PORT}", ca=material.ca)
        return Credentials(charm_password, forwarded_https=True)

    def publish(
        self, node: Security, catalogs: CatalogSet, standby_for: str | None = None
    ) -> None:
        """Ingress request and unit address; the leader also serves trino-catalog clients.

        A standby coordinator (``standby_for``: the unit that serves, empty until the
        leader has said) runs no Trino by design. traefik needs a valid `host` from
        every unit (one unit without it drops the application's routes), so a standby
        names the serving coordinator's pod and gives no IP (gateway-api-integrator
        routes to IPs): no client is routed to it. Until it knows the leader it can
        only name itself, which beats taking every route down.
        """
        https = bool(node.keystore)
        app, model = self._model.app.name, self._model.name
        if self.ingress.relation is not None:
            address = UnitAddress(host=self._pod_host(), ip=self._ip())
            if standby_for is not None:
                address = UnitAddress(host=self._pod_host(standby_for), ip="")
            self.ingress.publish(
                IngressRequest(
                    name=app,
                    model=model,
                    port=HTTPS_PORT if https else HTTP_PORT,
                    scheme="https" if https else "http",
                ),
                address,
            )
        if not self._model.unit.is_leader() or not self.clients.relations:
            return
        self.clients.users()  # every client has its user, even before authentication is on
        self.clients.publish(self.trino_url(https), _catalog_infos(catalogs))

    def trino_url(self, https: bool) -> str:
        """``host:port`` for clients: the ingress URL's, or the coordinator's own pod.

        Not the application service: it would also send clients to standby units,
        which run no Trino. Only the leader publishes, and the leader is the coordinator.
        """
        return self.ingress.address() or f"{self._pod_host()}:{HTTPS_PORT if https else HTTP_PORT}"

    def register_oauth_client(self) -> None:
        """Leader: register Trino's callback with the OAuth provider (before it sends the rest)."""
        if self.oauth.relation is not None and self._model.unit.is_leader():
            from core.oauth import redirect_uri  # noqa: PLC0415  (only with single sign-on)

            self.oauth.publish(redirect_uri(self.external_url()))

    def external_url(self) -> str:
        """Where browsers reach Trino: the https ingress URL, else the coordinator's pod."""
        url = self.ingress.url()
        return url if url.startswith("https://") else f"https://{self._pod_host()}:{HTTPS_PORT}"

    def _pod_host(self, unit: str = "") -> str:
        """A unit's (this one's) stable pod name, which its certificate covers."""
        unit = unit or self._model.unit.name
        return unit_names(unit, self._model.app.name, self._model.name)[0]

    def _ip(self) -> str:
        relation = self.ingress.relation
        binding = self._model.get_binding(relation) if relation else None
        address = binding.network.bind_address if binding else None
        return str(address) if address else ""


def _shared_provider(
    offer: ClusterOffer, coordinator: str, password: bool
) -> OAuthProvider | str | None:
    """The single sign-on a coordinator shares (None: off), or why a worker refuses it.

    Without the passwords beside it, or without its client secret, the worker would run
    with fewer authenticators than its coordinator: refused, nothing written.
    """
    text = offer.settings.get(OAUTH_SETTING, "")
    if not text:
        return None
    from core import oauth  # noqa: PLC0415  (only with single sign-on)

    try:
        provider = oauth.from_shared(text, offer.oauth_client_secret)
    except ValueError:
        return f"{coordinator} shares single sign-on settings this charm cannot read"
    if not password or not provider.client_secret:
        return f"{coordinator} turns single sign-on on without passwords or its client secret"
    return oauth.problem(provider, coordinator) or provider


def _catalog_infos(catalogs: CatalogSet) -> list[CatalogInfo]:
    return [
        CatalogInfo(
            name=name,
            connector=catalog.properties.get("connector.name", ""),
            description=f"{catalog.properties.get('connector.name', '')} catalog "
            f"({catalog.source})",
        )
        for name, catalog in catalogs.catalogs.items()
    ]
