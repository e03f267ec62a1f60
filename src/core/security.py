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
from typing import Any

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


@dataclasses.dataclass(frozen=True)
class SecurePath:
    """What makes a password safe to send: HTTPS on Trino, or TLS at the ingress."""

    https: bool = False  # Trino serves HTTPS itself (certificates relation)
    ingress_tls: bool = False  # the ingress URL is https and Trino trusts forwarded headers

    @property
    def secure(self) -> bool:
        """Whether password authentication can be turned on."""
        return self.https or self.ingress_tls


def authentication_types(password: bool, oauth: bool = False) -> str:
    """Trino's `http-server.authentication.type`: each way in, tried in order (empty: none).

    Single sign-on brings two: OAUTH2 (the browser flow, and tokens from it) and JWT
    (bearer tokens a service account got from the provider without a browser).
    """
    types = [*(["PASSWORD"] if password else []), *(["OAUTH2", "JWT"] if oauth else [])]
    return ",".join(types)


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
