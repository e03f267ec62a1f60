"""Who may talk to Trino, and how: users, password.db, access-control rules, secure paths.

Pure functions: the charm reads the secrets and relations, these decide. bcrypt is
imported only when a password.db is built, so hooks without authentication never
load it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from core import yamltext

USER_SECRET_OPTION = "user-secret-id"  # noqa: S105  (an option name)
RULES_OPTION = "access-control-rules"
USERS_KEY = "users"
# Trino accepts bcrypt hashes with a cost of at least 8.
BCRYPT_COST = 10
BCRYPT_MAX_BYTES = 72  # bcrypt ignores (bcrypt 5 refuses) longer passwords
_USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]*")  # fullmatch: `$` lets a "\n" through
# Sections of Trino's file access control where no section means "allow all".
_ALLOW_ALL_WHEN_ABSENT = ("catalogs",)


class AccessInputError(ValueError):
    """Operator input about access is unusable; the message names it and the fix."""


class SecurePath(NamedTuple):
    """What makes a password safe to send: HTTPS on Trino, or TLS at the ingress."""

    https: bool = False  # Trino serves HTTPS itself (certificates relation)
    ingress_tls: bool = False  # the ingress URL is https and Trino trusts forwarded headers

    @property
    def secure(self) -> bool:
        """Whether password authentication can be turned on."""
        return self.https or self.ingress_tls


def parse_users(content: Mapping[str, str] | str, secret_id: str) -> dict[str, str]:
    """The users of the `user-secret-id` secret; AccessInputError says what is wrong.

    ``content`` is the secret's content, or (a string) why it could not be read.
    """
    if isinstance(content, str):
        raise AccessInputError(f"{USER_SECRET_OPTION}: {content}")
    if USERS_KEY not in content:
        raise AccessInputError(
            f"{USER_SECRET_OPTION}: secret {secret_id} has no '{USERS_KEY}' key; set it with "
            f'`juju update-secret {secret_id} {USERS_KEY}="$(cat users.yaml)"`'
        )
    try:
        users = yamltext.load(content[USERS_KEY])
    except yamltext.YAMLError as error:
        line = str(error).splitlines()[0]
        raise AccessInputError(
            f"{USER_SECRET_OPTION}: '{USERS_KEY}' in secret {secret_id} is not YAML ({line})"
        ) from None
    if not isinstance(users, dict) or not users:
        raise AccessInputError(
            f"{USER_SECRET_OPTION}: '{USERS_KEY}' in secret {secret_id} must map each user "
            "to its password, e.g. `alice: s3cret`"
        )
    for user, password in users.items():
        if not isinstance(user, str) or not _USER_NAME.fullmatch(user):
            raise AccessInputError(
                f"{USER_SECRET_OPTION}: user {user!r} in secret {secret_id} is not a valid "
                "name (letters, digits, _ . @ -)"
            )
        if not isinstance(password, str) or not password:
            raise AccessInputError(
                f"{USER_SECRET_OPTION}: user {user!r} in secret {secret_id} needs a "
                "non-empty password (a quoted string)"
            )
        if len(password.encode()) > BCRYPT_MAX_BYTES:
            raise AccessInputError(
                f"{USER_SECRET_OPTION}: the password of {user!r} is longer than "
                f"{BCRYPT_MAX_BYTES} bytes, which bcrypt cannot hash"
            )
    return {str(user): str(password) for user, password in users.items()}


def reserved_user_problem(users: Mapping[str, str], reserved: set[str]) -> str:
    """Why an operator user clashes with one the charm manages, or empty."""
    clash = sorted(set(users) & reserved)
    if not clash:
        return ""
    return (
        f"{USER_SECRET_OPTION}: user {clash[0]!r} is reserved by the charm (its own user or "
        "a trino-catalog client): rename it in the secret"
    )


def password_db(users: Mapping[str, str], current: str = "") -> str:
    """Trino's password.db (``user:bcrypt-hash`` lines, sorted by user).

    A user whose password still matches its hash in ``current`` keeps that line,
    so the file only changes when users or passwords change (bcrypt salts are
    random: hashing again would always give a new file).
    """
    import bcrypt  # noqa: PLC0415  (lazy: see module docstring)

    known = {}
    for line in current.splitlines():
        user, _, hashed = line.partition(":")
        if hashed:
            known[user] = hashed
    lines = []
    for user, password in sorted(users.items()):
        hashed = known.get(user, "")
        secret = password.encode()
        if not (hashed and _matches(secret, hashed)):
            hashed = bcrypt.hashpw(secret, bcrypt.gensalt(BCRYPT_COST)).decode()
        lines.append(f"{user}:{hashed}")
    return "\n".join(lines) + "\n"


def users_digest(users: Mapping[str, str], key: str) -> str:
    """A keyed digest of the users and passwords: tells, without bcrypt, that nothing changed."""
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    message = json.dumps(sorted(users.items())).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _matches(password: bytes, hashed: str) -> bool:
    import bcrypt  # noqa: PLC0415

    try:
        return bcrypt.checkpw(password, hashed.encode())
    except ValueError:  # not a bcrypt hash (a hand-edited file)
        return False


def operator_rules(text: str) -> dict[str, Any]:
    """The `access-control-rules` option as a rules document; AccessInputError if unusable."""
    if not text.strip():
        return {}
    try:
        rules = json.loads(text)
    except ValueError as error:
        raise AccessInputError(
            f"{RULES_OPTION}: not valid JSON ({error}); fix it or "
            f"`juju config <app> --reset {RULES_OPTION}`"
        ) from None
    if not isinstance(rules, dict) or not all(
        isinstance(section, list) and all(isinstance(rule, dict) for rule in section)
        for section in rules.values()
    ):
        raise AccessInputError(
            f"{RULES_OPTION}: must be a JSON object of rule lists, e.g. "
            '{"catalogs": [{"user": "alice", "catalog": "sales", "allow": "all"}]}'
        )
    from core.rules import problem  # noqa: PLC0415  (only hooks with operator rules)

    refused = problem(rules)
    if refused:
        raise AccessInputError(f"{RULES_OPTION}: {refused} (as Trino reads rules.json)")
    return rules


def merge_rules(charm_rules: Mapping[str, list[Any]], operator: Mapping[str, Any]) -> dict:
    """The charm's rules first in each section (rules are first-match), then the operator's.

    Where the charm adds a section the operator left out and Trino would allow all without
    it, an explicit allow-all rule keeps that meaning for everyone but the charm's users.
    """
    merged: dict[str, list[Any]] = {}
    for section in sorted({*charm_rules, *operator}):
        rules = [*charm_rules.get(section, []), *operator.get(section, [])]
        if section in charm_rules and section not in operator:
            rules += _allow_all_when_absent(section, operator)
        merged[section] = rules
    return merged


def _allow_all_when_absent(section: str, operator: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What Trino allows when ``section`` is missing, as rules (none: it denies)."""
    if section == "catalogs":
        return [{"allow": "all"}]
    if section == "impersonation" and "principals" in operator:
        # Legacy principal rules without impersonation rules: Trino allows impersonation.
        return [{"original_user": ".*", "new_user": ".*", "allow": True}]
    return []


# LDAP, groups, and how the authenticators combine.

LDAP_URL_OPTION = "ldap-url"
LDAP_BIND_PATTERN_OPTION = "ldap-user-bind-pattern"
LDAP_USER_BASE_DN_OPTION = "ldap-user-base-dn"
LDAP_BIND_SECRET_OPTION = "ldap-bind-secret-id"  # noqa: S105  (an option name)
LDAP_GROUP_BASE_DN_OPTION = "ldap-group-base-dn"
LDAP_CA_OPTION = "ldap-ca-cert"
GROUP_SECRET_OPTION = "group-secret-id"  # noqa: S105  (an option name)
LDAP_OPTIONS = (
    LDAP_URL_OPTION,
    LDAP_BIND_PATTERN_OPTION,
    LDAP_USER_BASE_DN_OPTION,
    LDAP_BIND_SECRET_OPTION,
    LDAP_GROUP_BASE_DN_OPTION,
)
GROUPS_KEY = "groups"
# Trino's password authenticators, in the order a password is tried: the charm's own
# file first (the charm user and trino-catalog clients never depend on the LDAP server).
FILE_AUTHENTICATOR = "file"
LDAP_AUTHENTICATOR = "ldap"
_GROUP_NAME = _USER_NAME
_SEARCH_USER = "${USER}"  # what Trino replaces with the login name in LDAP patterns


@dataclasses.dataclass(frozen=True)
class Ldap:
    """An LDAP server Trino checks passwords against (and may read groups from)."""

    url: str  # ldaps://host:port
    user_bind_pattern: str = ""  # bind as this DN (``${USER}`` = the login): no bind account
    user_base_dn: str = ""  # or search users under it with the bind account
    bind_dn: str = ""
    bind_password: str = dataclasses.field(default="", repr=False)
    ca: str = ""  # PEM CA of the server's certificate, added to the JVM's truststore
    group_base_dn: str = ""  # groups searched under it; empty: the users' memberOf
    user_attribute: str = "uid"  # the attribute holding the login name

    def authenticator(self) -> dict[str, str]:
        """The properties of Trino's LDAP password authenticator."""
        properties = {"password-authenticator.name": "ldap", "ldap.url": self.url}
        if self.user_bind_pattern:
            properties["ldap.user-bind-pattern"] = self.user_bind_pattern
        else:
            properties.update(
                {
                    "ldap.user-base-dn": self.user_base_dn,
                    "ldap.bind-dn": self.bind_dn,
                    "ldap.bind-password": self.bind_password,
                    "ldap.group-auth-pattern": f"({self.user_attribute}={_SEARCH_USER})",
                }
            )
        return properties

    @property
    def can_search(self) -> bool:
        """Whether a bind account can look users (and their groups) up."""
        return bool(self.bind_dn and self.bind_password and self.user_base_dn)

    def group_provider(self) -> dict[str, str]:
        """The properties of Trino's LDAP group provider (needs the bind account)."""
        properties = {
            "group-provider.name": "ldap",
            "ldap.url": self.url,
            "ldap.admin-user": self.bind_dn,
            "ldap.admin-password": self.bind_password,
            "ldap.user-base-dn": self.user_base_dn,
            "ldap.user-search-filter": f"({self.user_attribute}={{0}})",
            "ldap.group-name-attribute": "cn",
        }
        if self.group_base_dn:  # groupOfNames entries whose `member` is the user's DN
            properties.update(
                {
                    "ldap.use-group-filter": "true",
                    "ldap.group-base-dn": self.group_base_dn,
                    "ldap.group-search-filter": "(objectClass=groupOfNames)",
                    "ldap.group-search-member-attribute": "member",
                }
            )
        else:
            properties.update(
                {"ldap.use-group-filter": "false", "ldap.user-member-of-attribute": "memberOf"}
            )
        return properties


class Authentication(NamedTuple):
    """How a node authenticates clients: what config.properties turns on."""

    types: tuple[str, ...] = ()  # http-server.authentication.type, in order
    password_authenticators: tuple[str, ...] = ()  # password-authenticator.config-files order


def authentication(*, password_file: bool, ldap: bool, oauth: bool = False) -> Authentication:
    """The authentication types and password authenticators, in the order Trino tries them.

    The password file (the charm's own user, trino-catalog clients, the operator's
    users) always comes first, LDAP after it. Single sign-on adds two types: OAUTH2
    (the browser flow, and tokens from it) and JWT (bearer tokens a service account
    got from the provider without a browser).
    """
    chain = [FILE_AUTHENTICATOR] * password_file + [LDAP_AUTHENTICATOR] * ldap
    types = ("PASSWORD",) * bool(chain) + ("OAUTH2", "JWT") * oauth
    return Authentication(types=types, password_authenticators=tuple(chain))


def ldap_from_options(
    options: Mapping[str, str], bind: Mapping[str, str] | str | None, ca: str
) -> Ldap | None:
    """The LDAP server the options name, None when `ldap-url` is empty; AccessInputError.

    ``bind`` is the `ldap-bind-secret-id` secret's content (None: no such option), or
    why it could not be read.
    """
    url = options.get(LDAP_URL_OPTION, "").strip()
    if not url:
        others = [name for name in LDAP_OPTIONS if options.get(name, "").strip()]
        if others:
            raise AccessInputError(
                f"{others[0]}: unused while {LDAP_URL_OPTION} is empty: set "
                f"{LDAP_URL_OPTION}=ldaps://<host>:<port> or reset {others[0]}"
            )
        return None
    check_ldap_url(url, LDAP_URL_OPTION)
    pattern = options.get(LDAP_BIND_PATTERN_OPTION, "").strip()
    base_dn = options.get(LDAP_USER_BASE_DN_OPTION, "").strip()
    secret_id = options.get(LDAP_BIND_SECRET_OPTION, "").strip()
    bind_dn = password = ""
    if isinstance(bind, str):
        raise AccessInputError(f"{LDAP_BIND_SECRET_OPTION}: {bind}")
    if bind is not None:
        bind_dn, password = bind.get("bind-dn", "").strip(), bind.get("bind-password", "")
        if not bind_dn or not password:
            raise AccessInputError(
                f"{LDAP_BIND_SECRET_OPTION}: secret {secret_id} needs the keys bind-dn and "
                f"bind-password: `juju update-secret {secret_id} bind-dn=<dn> "
                "bind-password=<password>`"
            )
    if pattern and _SEARCH_USER not in pattern:
        raise AccessInputError(
            f"{LDAP_BIND_PATTERN_OPTION}: {pattern!r} must contain {_SEARCH_USER} (the login), "
            "e.g. uid=${USER},ou=people,dc=example,dc=org"
        )
    if not pattern and not (base_dn and bind_dn):
        raise AccessInputError(
            f"{LDAP_URL_OPTION}: set {LDAP_BIND_PATTERN_OPTION} (users bind as themselves), or "
            f"{LDAP_USER_BASE_DN_OPTION} and {LDAP_BIND_SECRET_OPTION} (a bind account "
            "searches them)"
        )
    return no_secret_references(
        Ldap(
            url=url,
            user_bind_pattern=pattern,
            user_base_dn=base_dn,
            bind_dn=bind_dn,
            bind_password=password,
            ca=checked_ca(ca),
            group_base_dn=options.get(LDAP_GROUP_BASE_DN_OPTION, "").strip(),
        ),
        {
            "url": LDAP_URL_OPTION,
            "user_bind_pattern": LDAP_BIND_PATTERN_OPTION,
            "user_base_dn": LDAP_USER_BASE_DN_OPTION,
            "group_base_dn": LDAP_GROUP_BASE_DN_OPTION,
        },
    )


def no_secret_references(ldap: Ldap, sources: Mapping[str, str] | str) -> Ldap:
    """Refuse values Trino would rewrite: it replaces ``${provider:key}`` in every property.

    ``sources`` names where each field came from (an option), or the one source of all;
    fields it does not name came from the bind secret.
    """
    from core.catalogs import SECRET_REFERENCE  # noqa: PLC0415

    for name, value in dataclasses.asdict(ldap).items():
        if name != "ca" and SECRET_REFERENCE.search(value):
            if isinstance(sources, str):
                source = sources
            else:
                source = sources.get(name, LDAP_BIND_SECRET_OPTION)
            what = "the bind password" if name == "bind_password" else name.replace("_", " ")
            raise AccessInputError(
                f"{source}: {what} has ${{provider:key}}, which Trino would replace with "
                "another secret; change it"
            )
    return ldap


def check_ldap_url(url: str, source: str) -> None:
    """Refuse an LDAP URL that would send passwords in clear text (AccessInputError)."""
    if not re.fullmatch(r"ldaps://[A-Za-z0-9.\[\]:-]+(:[0-9]{1,5})?/?", url):
        raise AccessInputError(
            f"{source}: {url!r} is not an ldaps://<host>:<port> URL; Trino sends passwords "
            "to the LDAP server, so only LDAPS is accepted"
        )


def checked_ca(ca: str) -> str:
    """The `ldap-ca-cert` PEM, checked (AccessInputError); empty stays empty."""
    from core.truststore import pem_blocks  # noqa: PLC0415

    if not ca.strip():
        return ""
    blocks = pem_blocks(ca)
    if not blocks:
        raise AccessInputError(
            f"{LDAP_CA_OPTION}: no PEM certificate found; give the CA that signed the "
            "LDAP server's certificate (-----BEGIN CERTIFICATE-----...)"
        )
    return blocks


def parse_groups(content: Mapping[str, str] | str, secret_id: str) -> str:
    """Trino's group file (``group:user1,user2`` lines) from the `group-secret-id` secret.

    The secret's `groups` key is a YAML map group -> list of users.
    """
    option = GROUP_SECRET_OPTION
    if isinstance(content, str):
        raise AccessInputError(f"{option}: {content}")
    if GROUPS_KEY not in content:
        raise AccessInputError(
            f"{option}: secret {secret_id} has no '{GROUPS_KEY}' key; set it with "
            f'`juju update-secret {secret_id} {GROUPS_KEY}="$(cat groups.yaml)"`'
        )
    import yaml  # noqa: PLC0415

    try:
        groups = yaml.safe_load(content[GROUPS_KEY])
    except yaml.YAMLError:
        groups = None
    example = "e.g. `analysts: [alice, bob]`"
    if not isinstance(groups, dict) or not groups:
        raise AccessInputError(
            f"{option}: '{GROUPS_KEY}' in secret {secret_id} must map each group to its "
            f"users, {example}"
        )
    lines = []
    for group, users in sorted(groups.items(), key=lambda item: str(item[0])):
        if not isinstance(group, str) or not _GROUP_NAME.fullmatch(group):
            raise AccessInputError(
                f"{option}: group {group!r} in secret {secret_id} is not a valid name "
                "(letters, digits, _ . @ -)"
            )
        users = users or []
        if not isinstance(users, list) or not all(
            isinstance(user, str) and _USER_NAME.fullmatch(user) for user in users
        ):
            raise AccessInputError(
                f"{option}: group {group!r} in secret {secret_id} must list user names, {example}"
            )
        lines.append(f"{group}:{','.join(users)}")
    return "\n".join(lines) + "\n"
