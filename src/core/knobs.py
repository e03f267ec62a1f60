"""Operator knobs beyond the charm's own options, checked before anything is written.

- `config-overrides`: extra `config.properties` lines. Properties the charm owns
  (ports, discovery, the shared secret, authentication, HTTPS, forwarded headers,
  `management.user`, access control, catalog management, and what other options
  or relations set) are refused by name; everything else reaches Trino as given,
  and a property Trino refuses at start is caught by the rolling restart.
- `resource-groups`: Trino's file-based resource-group configuration (JSON).
- `session-properties`: Trino's file-based session property rules (JSON).

Trino reads the two JSON files once, at start (483's `FileResourceGroupConfig`
and `FileSessionPropertyManagerConfig` have `config-file` and nothing else; only
the database managers refresh), so a change to them restarts Trino in turn.
Regular expressions are Java's, checked with Python's `re` where the syntax
agrees (`core.rules.java_regex_error`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from core import sizes
from core.rules import java_regex_error

OVERRIDES = "config-overrides"
RESOURCE_GROUPS = "resource-groups"
SESSION_PROPERTIES = "session-properties"

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Property names (exact, or a prefix ending in "."/"-") the charm writes or will write,
# and what sets them instead. The first match wins.
OWNED = (
    ("coordinator", "the role: use charm-function"),
    ("node-scheduler.include-coordinator", "the role: use charm-function"),
    ("http-server.http.", "the ports"),
    ("http-server.https.", "HTTPS: relate to a certificates provider"),
    ("http-server.authentication.", "authentication: use user-secret-id"),
    ("web-ui.authentication.", "authentication: use user-secret-id"),
    ("http-server.process-forwarded", "forwarded headers: the ingress relation"),
    ("discovery.", "discovery: use discovery-uri"),
    ("discovery-server.", "discovery: use discovery-uri"),
    ("internal-communication.", "the cluster's shared secret"),
    ("management.", "management.user: the metrics user"),
    ("access-control.", "access control: use access-control-rules"),
    ("catalog.", "catalog management: use catalog-config or add-catalog"),
    ("shutdown.grace-period", "use graceful-shutdown-period"),
    ("query.max-memory", "use query-max-memory"),
    ("query.max-memory-per-node", "use query-max-memory-per-node"),
    ("metrics.", "the metrics the charm exports"),
    ("openmetrics.", "the metrics the charm exports"),
    ("tracing.", "tracing: the tracing relation"),
    ("otel.", "tracing: the tracing relation"),
    ("retry-policy", "use retry-policy"),
    ("exchange-manager.", "the exchange manager: the exchange-s3 relation"),
    ("resource-groups.", f"use {RESOURCE_GROUPS}"),
    ("session-property-config.", f"use {SESSION_PROPERTIES}"),
    ("session-property-manager.", f"use {SESSION_PROPERTIES}"),
    ("node.", "node.properties is the charm's"),
)

SCHEDULING_POLICIES = ("fair", "weighted", "weighted_fair", "query_priority")
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)%")
_SELECTOR_REGEXES = ("user", "userGroup", "originalUser", "authenticatedUser", "source")
_SESSION_REGEXES = ("user", "source", "group")


class KnobError(ValueError):
    """An operator knob Trino would refuse (or the charm owns)."""


def owner(key: str) -> str | None:
    """What sets ``key`` instead of an override, or None when an override may."""
    for name, what in OWNED:
        if key == name.rstrip(".") or (name.endswith(".") and key.startswith(name)):
            return what
    return None


def overrides(text: str) -> dict[str, str]:
    """The `config-overrides` lines as properties; KnobError names the first bad line."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, equals, value = (part.strip() for part in line.partition("="))
        where = f"line {number}"
        if not equals or not _KEY.fullmatch(key):
            raise KnobError(f"{where} {line[:60]!r} is not a property=value line")
        if key in found:
            raise KnobError(f"{where}: {key} is given twice")
        if what := owner(key):
            raise KnobError(f"{where}: {key} is the charm's ({what}); remove it")
        if "${" in value:
            raise KnobError(f"{where}: {key} holds ${{...}}, which Trino would replace")
        found[key] = value
    return found


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise KnobError(f"not valid JSON ({error})") from None


def resource_groups(text: str) -> dict[str, Any]:
    """The resource-group configuration, checked; KnobError says what Trino would refuse."""
    spec = _json(text)
    if not isinstance(spec, dict):
        raise KnobError('must be a JSON object with "rootGroups" and "selectors"')
    roots = spec.get("rootGroups")
    if not isinstance(roots, list) or not roots:
        raise KnobError('"rootGroups" must be a non-empty list of groups')
    selectors = spec.get("selectors")
    if not isinstance(selectors, list):
        raise KnobError('"selectors" must be a list')
    if "cpuQuotaPeriod" in spec and not _duration(spec["cpuQuotaPeriod"]):
        raise KnobError(f"cpuQuotaPeriod {spec['cpuQuotaPeriod']!r} is not a duration like 1h")
    leaves: set[str] = set()
    parents: set[str] = set()
    _check_groups(roots, "", leaves, parents)
    for index, selector in enumerate(selectors, start=1):
        problem = _selector_problem(selector, leaves, parents)
        if problem:
            raise KnobError(f"selector {index}: {problem}")
    return spec


def _check_groups(groups: list[Any], parent: str, leaves: set[str], parents: set[str]) -> None:
    """Check every group of one level (and below); record the paths of leaves and parents."""
    names: set[str] = set()
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            raise KnobError(f"every group under {parent or 'rootGroups'} needs a name")
        name = group["name"]
        path = f"{parent}.{name}" if parent else name
        if not name or "." in name:
            raise KnobError(f"group {path!r}: a name is not empty and has no dot")
        if name in names:
            raise KnobError(f"group {path} is given twice")
        names.add(name)
        problem = next(_group_problems(group), None)
        if problem:
            raise KnobError(f"group {path}: {problem}")
        children = group.get("subGroups")
        children = [] if children is None else children
        if not isinstance(children, list):
            raise KnobError(f"group {path}: subGroups must be a list")
        (parents if children else leaves).add(path)
        _check_groups(children, path, leaves, parents)


def _group_problems(group: dict[str, Any]) -> Iterator[str]:
    memory = group.get("softMemoryLimit")
    percent = _PERCENT.fullmatch(memory) if isinstance(memory, str) else None
    if not isinstance(memory, str) or not (
        (percent and float(percent[1]) <= 100) or sizes.trino_size(memory)  # noqa: PLR2004
    ):
        yield "softMemoryLimit must be a data size such as 10GB or a share such as 80%"
    if not _count(group.get("maxQueued")):
        yield "maxQueued must be a whole number, 0 or more"
    hard = group.get("hardConcurrencyLimit", group.get("maxRunning"))
    if not _count(hard):
        yield "hardConcurrencyLimit must be a whole number, 0 or more"
    soft = group.get("softConcurrencyLimit")
    if soft is not None and not (_count(soft) and _count(hard) and soft <= hard):
        yield "softConcurrencyLimit must be a whole number from 0 to hardConcurrencyLimit"
    policy = group.get("schedulingPolicy")
    if policy is not None and str(policy).lower() not in SCHEDULING_POLICIES:
        yield f"schedulingPolicy must be one of {', '.join(SCHEDULING_POLICIES)}"
    if "schedulingWeight" in group and not _count(group["schedulingWeight"]):
        yield "schedulingWeight must be a whole number"
    if "jmxExport" in group and not isinstance(group["jmxExport"], bool):
        yield "jmxExport must be true or false"
    for limit in ("softCpuLimit", "hardCpuLimit"):
        if limit in group and not _duration(group[limit]):
            yield f"{limit} must be a duration such as 1h"


def _selector_problem(selector: Any, leaves: set[str], parents: set[str]) -> str | None:
    if not isinstance(selector, dict):
        return "must be an object"
    group = selector.get("group")
    if not isinstance(group, str):
        return 'needs a "group"'
    if group in parents:
        return f"group {group} has subgroups: Trino queues queries only in leaf groups"
    if group not in leaves:
        return f"group {group} is not defined in rootGroups"
    return _regexes_problem(selector, _SELECTOR_REGEXES) or _tags_problem(selector)


def session_properties(text: str) -> list[dict[str, Any]]:
    """The session property rules, checked; KnobError says what Trino would refuse."""
    rules = _json(text)
    if not isinstance(rules, list):
        raise KnobError('must be a JSON list of rules such as [{"user": "bob", ...}]')
    for index, rule in enumerate(rules, start=1):
        problem = _session_rule_problem(rule)
        if problem:
            raise KnobError(f"rule {index}: {problem}")
    return rules


def _session_rule_problem(rule: Any) -> str | None:
    if not isinstance(rule, dict):
        return "must be an object"
    values = rule.get("sessionProperties")
    if not isinstance(values, dict) or not all(
        isinstance(value, str) for value in values.values()
    ):
        return 'needs "sessionProperties": an object of property names to text values'
    if "queryType" in rule and not isinstance(rule["queryType"], str):
        return "queryType must be text"
    return _regexes_problem(rule, _SESSION_REGEXES) or _tags_problem(rule)


def _regexes_problem(item: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    for field in fields:
        if field not in item:
            continue
        value = item[field]
        if not isinstance(value, str):
            return f"{field} must be a regular expression (text)"
        error = java_regex_error(value)
        if error:
            return f"{field} {value!r} is not a valid regular expression ({error})"
    return None


def _tags_problem(item: dict[str, Any]) -> str | None:
    tags = item.get("clientTags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return "clientTags must be a list of text"
    return None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _duration(value: Any) -> bool:
    return isinstance(value, str) and sizes.trino_duration_ok(value)
