"""Trino's file-based access-control rules, checked the way Trino reads them.

Trino rereads `rules.json` while it runs (`security.refresh-period`); a document it
cannot parse makes every access check fail until it is fixed. Trino (483) binds
each section to a rule class with Jackson, failing on unknown fields, missing
required ones, unknown enum values and regular expressions that do not compile;
`problem` finds the same mistakes before the file is written.

Regular expressions are Java's: the few Java-only constructs Python's `re` lacks
(`\\p{...}`, `\\Q...\\E`, `(?<name>...)`) are rewritten before compiling.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Choice:
    """One value out of a few (``many``: a JSON list of them)."""

    values: tuple[str, ...]
    many: bool = False
    any_case: bool = False  # Trino lower-cases before matching
    booleans: bool = False  # legacy true/false accepted too

    def problem(self, value: Any) -> str | None:
        items = value if self.many and isinstance(value, list) else [value]
        if self.many and not isinstance(value, list):
            return f"must be a list of {', '.join(self.values)}"
        for item in items:
            if self.booleans and isinstance(item, bool):
                continue
            text = item.lower() if self.any_case and isinstance(item, str) else item
            if text not in self.values:
                what = "a list of " if self.many else ""
                joined = ", ".join(self.values)
                return f"must be {what}{joined if self.many else _or(self.values)}"
        return None


REGEX, BOOL, TEXT, ENVIRONMENT, COLUMNS = "regex", "bool", "text", "environment", "columns"
IDENTITY = {"user": REGEX, "role": REGEX, "group": REGEX}
EXECUTE = ("EXECUTE", "GRANT_EXECUTE")

# Section -> (field -> kind, required fields), from the rule classes' @JsonCreator.
SECTIONS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "catalogs": (
        {**IDENTITY, "catalog": REGEX, "allow": Choice(("all", "read-only", "none"), any_case=True, booleans=True)},
        ("allow",),
    ),
    "queries": (
        {**IDENTITY, "queryOwner": REGEX, "allow": Choice(("execute", "view", "kill"), many=True, any_case=True)},
        ("allow",),
    ),
    "impersonation": (
        {"original_user": REGEX, "original_role": REGEX, "new_user": REGEX, "allow": BOOL},
        ("new_user",),
    ),
    "principals": (
        {"principal": REGEX, "user": REGEX, "principal_to_user": TEXT, "allow": BOOL},
        ("principal",),
    ),
    "system_information": (
        {"user": REGEX, "role": REGEX, "allow": Choice(("read", "write"), many=True, any_case=True)},
        ("allow",),
    ),
    "authorization": (
        {
            "original_user": REGEX, "original_group": REGEX, "original_role": REGEX,
            "new_user": REGEX, "new_role": REGEX, "allow": BOOL,
        },
        (),
    ),
    "schemas": ({**IDENTITY, "catalog": REGEX, "schema": REGEX, "owner": BOOL}, ()),
    "tables": (
        {
            **IDENTITY, "catalog": REGEX, "schema": REGEX, "table": REGEX,
            "privileges": Choice(
                ("SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"), many=True
            ),
            "columns": COLUMNS, "filter": TEXT, "filter_environment": ENVIRONMENT,
        },
        ("privileges",),
    ),
    "system_session_properties": ({**IDENTITY, "property": REGEX, "allow": BOOL}, ()),
    "catalog_session_properties": (
        {**IDENTITY, "catalog": REGEX, "property": REGEX, "allow": BOOL},
        (),
    ),
    "functions": (
        {
            **IDENTITY, "catalog": REGEX, "schema": REGEX, "function": REGEX,
            "privileges": Choice((*EXECUTE, "OWNERSHIP"), many=True),
            "function_kinds": Choice(("SCALAR", "AGGREGATE", "WINDOW", "TABLE"), many=True),
        },
        ("privileges",),
    ),
    "procedures": (
        {
            **IDENTITY, "catalog": REGEX, "schema": REGEX, "procedure": REGEX,
            "privileges": Choice(EXECUTE, many=True),
        },
        ("privileges",),
    ),
}  # fmt: skip
# Older spellings Trino still reads.
ALIASES = {"originalUser": "original_user", "newUser": "new_user", "functionKinds": "function_kinds"}
COLUMN_FIELDS = {"name": TEXT, "allow": BOOL, "mask": TEXT, "mask_environment": ENVIRONMENT}


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
    section: str, rule: Mapping[str, Any], fields: Mapping[str, Any], required: tuple[str, ...]
) -> str | None:
    rule = {ALIASES.get(key, key): value for key, value in rule.items()}
    missing = [name for name in required if rule.get(name) is None]
    if missing:
        return f"{missing[0]} is required"
    found = _fields_problem(rule, fields)
    if found:
        return found
    if section == "queries" and "queryOwner" in rule and "execute" in map(str.lower, rule["allow"]):
        return "a rule with queryOwner cannot allow execute"
    if section == "principals" and "user" not in rule and "principal_to_user" not in rule:
        return "give user or principal_to_user"
    if section == "authorization" and "new_user" not in rule and "new_role" not in rule:
        return "give new_user or new_role"
    return None


def _fields_problem(rule: Mapping[str, Any], fields: Mapping[str, Any]) -> str | None:
    for name, value in rule.items():
        kind = fields.get(name)
        if kind is None:
            return f"unknown field {name!r}; use {', '.join(fields)}"
        found = _value_problem(kind, value)
        if found:
            return f"{name} {found}"
    return None


def _value_problem(kind: Any, value: Any) -> str | None:
    if isinstance(kind, Choice):
        return kind.problem(value)
    if kind == BOOL:
        return None if isinstance(value, bool) else "must be true or false"
    if not isinstance(value, str) and kind in (TEXT, REGEX):
        return "must be text"
    if kind == REGEX:
        error = java_regex_error(value)
        return f"{value!r} is not a valid regular expression ({error})" if error else None
    if kind == ENVIRONMENT:
        ok = isinstance(value, dict) and all(k == "user" and isinstance(v, str) for k, v in value.items())
        return None if ok else 'must be an object such as {"user": "system_user"}'
    if kind == COLUMNS:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            return "must be a list of column objects"
        for number, column in enumerate(value, start=1):
            found = "name is required" if "name" not in column else None
            found = found or _fields_problem(column, COLUMN_FIELDS)
            if found:
                return f"entry {number}: {found}"
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


def _or(values: tuple[str, ...]) -> str:
    return f"{', '.join(values[:-1])} or {values[-1]}"
