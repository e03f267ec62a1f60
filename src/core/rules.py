r"""Trino's file-based access-control rules, checked the way Trino reads them.

Trino rereads `rules.json` while it runs (`security.refresh-period`); a document it
cannot parse makes every access check fail until it is fixed. Trino (483) binds
each section to a rule class with Jackson, failing on unknown fields, missing
required ones, unknown enum values and regular expressions that do not compile;
`problem` finds the same mistakes before the file is written.

Regular expressions are Java's: the few Java-only constructs Python's `re` lacks
(`\p{...}`, `\Q...\E`, `(?<name>...)`) are rewritten before compiling.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Choice:
    """One value out of a few (``many``: a JSON list of them)."""

    values: tuple[str, ...]
    many: bool = False
    any_case: bool = False  # Trino lower-cases before matching
    booleans: bool = False  # legacy true/false accepted too

    def __call__(self, value: Any) -> str | None:
        """Why ``value`` is not one (or a list) of the values; None if it is."""
        if self.many and not isinstance(value, list):
            return f"must be a list of {', '.join(self.values)}"
        for item in value if self.many else [value]:
            if self.booleans and isinstance(item, bool):
                continue
            text = item.lower() if self.any_case and isinstance(item, str) else item
            if text not in self.values:
                if self.many:
                    return f"must be a list of {', '.join(self.values)}"
                return f"must be {', '.join(self.values[:-1])} or {self.values[-1]}"
        return None


def regex(value: Any) -> str | None:
    """A Java regular expression."""
    if not isinstance(value, str):
        return "must be text"
    error = java_regex_error(value)
    return f"{value!r} is not a valid regular expression ({error})" if error else None


def boolean(value: Any) -> str | None:
    """A JSON boolean."""
    return None if isinstance(value, bool) else "must be true or false"


def text(value: Any) -> str | None:
    """A JSON string."""
    return None if isinstance(value, str) else "must be text"


def environment(value: Any) -> str | None:
    """A filter or mask environment: `{"user": ...}`."""
    ok = isinstance(value, dict) and all(
        k == "user" and isinstance(v, str) for k, v in value.items()
    )
    return None if ok else 'must be an object such as {"user": "system_user"}'


def columns(value: Any) -> str | None:
    """A table rule's column constraints."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return "must be a list of column objects"
    for number, column in enumerate(value, start=1):
        found = "name is required" if "name" not in column else None
        found = found or _fields_problem(column, COLUMN_FIELDS)
        if found:
            return f"entry {number}: {found}"
    return None


Check = Callable[[Any], "str | None"]
IDENTITY: dict[str, Check] = {"user": regex, "role": regex, "group": regex}
EXECUTE = ("EXECUTE", "GRANT_EXECUTE")
CATALOG_ACCESS = Choice(("all", "read-only", "none"), any_case=True, booleans=True)
QUERY_ACCESS = Choice(("execute", "view", "kill"), many=True, any_case=True)
TABLE_PRIVILEGES = Choice(
    ("SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"), many=True
)
SYSTEM_ACCESS = Choice(("read", "write"), many=True, any_case=True)
FUNCTION_KINDS = Choice(("SCALAR", "AGGREGATE", "WINDOW", "TABLE"), many=True)

# Section -> (field -> kind, required fields), from the rule classes' @JsonCreator.
SECTIONS: dict[str, tuple[dict[str, Check], tuple[str, ...]]] = {
    "catalogs": ({**IDENTITY, "catalog": regex, "allow": CATALOG_ACCESS}, ("allow",)),
    "queries": ({**IDENTITY, "queryOwner": regex, "allow": QUERY_ACCESS}, ("allow",)),
    "impersonation": (
        {"original_user": regex, "original_role": regex, "new_user": regex, "allow": boolean},
        ("new_user",),
    ),
    "principals": (
        {"principal": regex, "user": regex, "principal_to_user": text, "allow": boolean},
        ("principal",),
    ),
    "system_information": (
        {"user": regex, "role": regex, "allow": SYSTEM_ACCESS},
        ("allow",),
    ),
    "authorization": (
        {
            "original_user": regex, "original_group": regex, "original_role": regex,
            "new_user": regex, "new_role": regex, "allow": boolean,
        },
        (),
    ),
    "schemas": ({**IDENTITY, "catalog": regex, "schema": regex, "owner": boolean}, ()),
    "tables": (
        {
            **IDENTITY, "catalog": regex, "schema": regex, "table": regex,
            "privileges": TABLE_PRIVILEGES,
            "columns": columns, "filter": text, "filter_environment": environment,
        },
        ("privileges",),
    ),
    "system_session_properties": ({**IDENTITY, "property": regex, "allow": boolean}, ()),
    "catalog_session_properties": (
        {**IDENTITY, "catalog": regex, "property": regex, "allow": boolean},
        (),
    ),
    "functions": (
        {
            **IDENTITY, "catalog": regex, "schema": regex, "function": regex,
            "privileges": Choice((*EXECUTE, "OWNERSHIP"), many=True),
            "function_kinds": FUNCTION_KINDS,
        },
        ("privileges",),
    ),
    "procedures": (
        {
            **IDENTITY, "catalog": regex, "schema": regex, "procedure": regex,
            "privileges": Choice(EXECUTE, many=True),
        },
        ("privileges",),
    ),
}  # fmt: skip
# Older spellings Trino still reads.
ALIASES = {
    "originalUser": "original_user",
    "newUser": "new_user",
    "functionKinds": "function_kinds",
}
COLUMN_FIELDS: dict[str, Check] = {
    "name": text, "allow": boolean, "mask": text, "mask_environment": environment
}  # fmt: skip


def problem(rules: Mapping[str, Any]) -> str | None:
    """Why Trino would not load ``rules`` (a JSON object of rule lists); None if it would."""
    for section, entries in rules.items():
        if section not in SECTIONS:
            return f"unknown section {section!r}; Trino reads {', '.join(SECTIONS)}"
        fields, required = SECTIONS[section]
        for number, rule in enumerate(entries, start=1):
            found = _rule_problem(section, rule, fields, required)
            if found:
                return f"{section} rule {number}: {found}"
    return None


def _rule_problem(
    section: str, rule: Mapping[str, Any], fields: Mapping[str, Check], required: tuple[str, ...]
) -> str | None:
    rule = {ALIASES.get(key, key): value for key, value in rule.items()}
    missing = [name for name in required if rule.get(name) is None]
    if missing:
        return f"{missing[0]} is required"
    found = _fields_problem(rule, fields)
    if found:
        return found
    if (
        section == "queries"
        and "queryOwner" in rule
        and "execute" in map(str.lower, rule["allow"])
    ):
        return "a rule with queryOwner cannot allow execute"
    if section == "principals" and "user" not in rule and "principal_to_user" not in rule:
        return "give user or principal_to_user"
    if section == "authorization" and "new_user" not in rule and "new_role" not in rule:
        return "give new_user or new_role"
    return None


def _fields_problem(rule: Mapping[str, Any], fields: Mapping[str, Check]) -> str | None:
    for name, value in rule.items():
        kind = fields.get(name)
        if kind is None:
            return f"unknown field {name!r}; use {', '.join(fields)}"
        found = kind(value)
        if found:
            return f"{name} {found}"
    return None


_JAVA_ONLY = re.compile(r"\\[pP]\{[^}]*\}|\\Q(.*?)(?:\\E|$)|\(\?<(?=[A-Za-z])", re.DOTALL)


def java_regex_error(pattern: str) -> str | None:
    """Why Java's `Pattern.compile` would refuse ``pattern`` (as far as Python can tell)."""

    def python(match: re.Match[str]) -> str:
        text = match[0]
        if text.startswith("\\Q"):
            return re.escape(match[1])
        return "(?P<" if text.startswith("(?<") else "."

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nested-set FutureWarnings: Java syntax, not an error
        try:
            re.compile(_JAVA_ONLY.sub(python, pattern))
        except re.error as error:
            return str(error)
    return None
