"""Catalogs: one model fed by every source (config, actions, relations).

A catalog names its credentials (a Juju secret and which property comes from
which key) instead of holding them; the charm resolves them just before
rendering, so credentials never sit in config, peer data or action output.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any, NamedTuple

# Patterns are used with fullmatch: `$` would also accept a trailing line break.
NAME = re.compile(r"[a-z][a-z0-9_]*")
# <name>.properties and <name>-ca.pem must fit the 255 bytes a file name may have.
MAX_NAME_LENGTH = 128
# Files a catalog needs besides its .properties (CA certificates): never in the catalog folder.
CERTS_DIR = "/etc/trino/certs"
# A catalog file named <catalog>-jvm-ca.pem holds CAs the whole JVM must trust (core.truststore).
JVM_TRUST_SUFFIX = "-jvm-ca.pem"
CERT_FILE = re.compile(r"/etc/trino/certs/[a-z][a-z0-9_.-]*")
PROPERTY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
RESERVED_NAMES = frozenset({"system"})
# Trino (airlift's secrets resolver) replaces `${provider:key}` in every value it reads, with
# no escape for a literal one: such a value would never reach the connector as written.
SECRET_REFERENCE = re.compile(r"\$\{[a-zA-Z][a-zA-Z0-9_-]*:[^}]+}")
CONFIG_SOURCE = "config"  # catalog-config
ACTION_SOURCE = "action"  # add-catalog
# Sources an operator writes; their secrets must be ones made for catalogs (see `resolve`).
OPERATOR_SOURCES = frozenset({CONFIG_SOURCE, ACTION_SOURCE})

# Connectors of trinodb/trino:483, by the names their factories register. Only the
# fallback: the image's own plugin folders (`connectors_in`) are the truth.
CONNECTORS = frozenset(
    {
        "bigquery", "blackhole", "cassandra", "clickhouse", "delta_lake", "druid", "duckdb",
        "elasticsearch", "exasol", "faker", "gsheets", "hive", "hudi", "iceberg",
        "ignite", "jmx", "kafka", "lakehouse", "loki", "mariadb", "memory", "mongodb",
        "mysql", "opensearch", "oracle", "pinot", "postgresql", "prometheus", "redis",
        "redshift", "singlestore", "snowflake", "sqlserver", "tpcds", "tpch", "trino_thrift",
    }
)  # fmt: skip
# Plugin folders whose connector name is not the folder's name with `_` for `-`.
_CONNECTOR_OF_FOLDER = {"google-sheets": "gsheets", "thrift": "trino_thrift"}
# Plugin folders of Trino's server that hold no connector.
_NOT_CONNECTORS = frozenset(
    {
        "ai-functions", "exchange-filesystem", "exchange-hdfs", "functions-python",
        "geospatial", "ml", "opa", "openlineage", "password-authenticators", "ranger",
        "resource-group-managers", "session-property-managers", "spooling-filesystem",
        "teradata-functions",
    }
)  # fmt: skip


def connectors_in(plugin_folders: Iterable[str]) -> frozenset[str]:
    """The connector names of an image, from the folders under /usr/lib/trino/plugin."""
    return frozenset(
        _CONNECTOR_OF_FOLDER.get(folder, folder.replace("-", "_"))
        for folder in plugin_folders
        if folder not in _NOT_CONNECTORS and not folder.endswith("-event-listener")
    )


def name_problem(name: str) -> str | None:
    """Why Trino (or the file system) would refuse a catalog name; None if it is fine."""
    if len(name) > MAX_NAME_LENGTH:
        return (
            f"name is {len(name)} characters long; names are at most {MAX_NAME_LENGTH} characters"
        )
    if not NAME.fullmatch(name) or name in RESERVED_NAMES:
        return (
            f"name {name!r} is not allowed: use lower case letters, digits and "
            "underscores, starting with a letter, and not 'system'"
        )
    return None


def _iceberg_needs(properties: Mapping[str, str]) -> list[str]:
    kind = properties.get("iceberg.catalog.type", "")
    return {
        # Trino 483's IcebergJdbcCatalogConfig: driver-class is @NotNull and
        # default-warehouse-dir @NotEmpty.
        "jdbc": [
            "iceberg.jdbc-catalog.connection-url",
            "iceberg.jdbc-catalog.catalog-name",
            "iceberg.jdbc-catalog.driver-class",
            "iceberg.jdbc-catalog.default-warehouse-dir",
        ],
        "hive_metastore": ["hive.metastore.uri"],
        "rest": ["iceberg.rest-catalog.uri"],
    }.get(kind, [])


def _metastore_needs(properties: Mapping[str, str]) -> list[str]:
    # Without `hive.metastore` Trino uses a Thrift metastore, which needs its URI.
    return [] if properties.get("hive.metastore", "thrift") != "thrift" else ["hive.metastore.uri"]


# Properties without which Trino refuses to load a catalog of these connectors.
REQUIRED: dict[str, Any] = {
    "postgresql": lambda p: ["connection-url"],
    "mysql": lambda p: ["connection-url"],
    "mariadb": lambda p: ["connection-url"],
    "iceberg": lambda p: ["iceberg.catalog.type", *_iceberg_needs(p)],
    "hive": _metastore_needs,
    "delta_lake": _metastore_needs,
}


@dataclasses.dataclass(frozen=True)
class Catalog:
    """A catalog as a source declares it; credentials are references."""

    name: str
    connector: str
    source: str  # "config", "action", or the relation that made it
    properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    secret: str = ""  # Juju secret id holding the credentials
    secret_properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Set by relations only, never persisted (`to_data`) nor listed. Files the catalog
    # refers to (absolute path under CERTS_DIR -> content), e.g. a CA certificate:
    files: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Credentials a provider sent as plain relation data (property -> value):
    credentials: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    def problems(self, connectors: Collection[str] = CONNECTORS) -> list[str]:
        """Why Trino would refuse this catalog, each with the fix; empty if fine.

        ``connectors``: the connector names the image has.
        """
        found = [problem] if (problem := name_problem(self.name)) else []
        if self.connector not in connectors:
            found.append(
                f"connector {self.connector!r} is not in the Trino image; "
                "use one of its plugins such as postgresql, iceberg or tpch"
            )
        names = [*self.properties, *self.secret_properties, *self.credentials]
        bad = [
            name for name in names if not PROPERTY.fullmatch(str(name)) or name == "connector.name"
        ]
        if bad:
            found.append(f"property names {sorted(bad)} are not valid Trino property names")
        bad_files = sorted(path for path in self.files if not CERT_FILE.fullmatch(path))
        if bad_files:
            found.append(f"files {bad_files} are not in {CERTS_DIR}")
        both = sorted(set(self.properties) & set(self.secret_properties))
        if both:
            found.append(f"{both} are set both in properties and in secret-properties")
        if self.secret_properties and not self.secret:
            found.append("secret-properties need a secret: add `secret: <secret id>`")
        if self.secret and not self.secret_properties:
            found.append("a secret without secret-properties is unused: say which keys to use")
        if self.connector in REQUIRED:
            missing = [
                name
                for name in REQUIRED[self.connector](self.properties)
                if name not in names or not str(self.properties.get(name, "x")).strip()
            ]
            if missing:
                found.append(f"the {self.connector} connector needs {', '.join(missing)}")
        return found

    def to_data(self) -> dict[str, Any]:
        """The catalog as plain data, for the peer databag (no credentials in it)."""
        data: dict[str, Any] = {"connector": self.connector, "properties": dict(self.properties)}
        if self.secret:
            data["secret"] = self.secret
            data["secret-properties"] = dict(self.secret_properties)
        return data


def from_cluster(
    name: str,
    source: str,
    properties: Mapping[str, str],
    credentials: Iterable[str] = (),
    files: Mapping[str, str] | None = None,
) -> Catalog:
    """A catalog as a coordinator shares it, so that a worker checks it with the same rules."""
    secret = frozenset(credentials)
    return Catalog(
        name=name,
        connector=properties.get("connector.name", ""),
        source=source,
        properties={
            key: value
            for key, value in properties.items()
            if key != "connector.name" and key not in secret
        },
        files=dict(files or {}),
        credentials={key: properties[key] for key in secret if key in properties},
    )


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Join nested keys with dots: `juju run` turns ``a.b.c=1`` into ``{a: {b: {c: 1}}}``."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class CatalogDocumentError(ValueError):
    """A catalog document that is not a mapping of catalogs."""


def from_document(document: Any, source: str) -> list[Catalog]:
    """Catalogs from a `catalog-config` style mapping: name -> {connector, ...}."""
    if document is None:
        return []
    if not isinstance(document, dict):
        raise CatalogDocumentError("must be a mapping of catalog name to its settings")
    catalogs = []
    for name, entry in document.items():
        if not isinstance(entry, dict):
            raise CatalogDocumentError(f"catalog {name!r} must be a mapping with a connector")
        unknown = sorted(set(entry) - {"connector", "properties", "secret", "secret-properties"})
        if unknown:
            raise CatalogDocumentError(
                f"catalog {name!r} has unknown keys {unknown}; use connector, properties, "
                "secret and secret-properties"
            )
        catalogs.append(
            Catalog(
                name=str(name),
                connector=_text(entry.get("connector"), f"catalog {name!r} connector"),
                source=source,
                properties=_text_map(entry.get("properties"), f"catalog {name!r} properties"),
                secret=_text(entry.get("secret") or "", f"catalog {name!r} secret"),
                secret_properties=_text_map(
                    entry.get("secret-properties"), f"catalog {name!r} secret-properties"
                ),
            )
        )
    return catalogs


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise CatalogDocumentError(f"{what} must be text")
    return str(value)


def _text_map(value: Any, what: str) -> dict[str, str]:
    """A mapping of text to text; YAML numbers and booleans are written as Trino spells them."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CatalogDocumentError(f"{what} must be a mapping")
    out = {}
    for key, item in value.items():
        if isinstance(item, bool):
            item = "true" if item else "false"
        if not isinstance(item, str | int | float) or not isinstance(key, str):
            raise CatalogDocumentError(f"{what}: {key!r} must map a name to a text value")
        out[key] = str(item)
    return out


class Clash(NamedTuple):
    """Two sources claim the same catalog name."""

    name: str
    sources: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"catalog {self.name!r} is defined by both {' and '.join(self.sources)}; "
            "remove or rename one of them"
        )


def merge(sources: Iterable[Iterable[Catalog]]) -> tuple[dict[str, Catalog], list[Clash]]:
    """One catalog set from every source; a name claimed twice is a clash, never an override."""
    seen: dict[str, list[Catalog]] = {}
    for catalogs in sources:
        for catalog in catalogs:
            seen.setdefault(catalog.name, []).append(catalog)
    merged = {name: claims[0] for name, claims in seen.items() if len(claims) == 1}
    clashes = [
        Clash(name, tuple(claim.source for claim in claims))
        for name, claims in sorted(seen.items())
        if len(claims) > 1
    ]
    return merged, clashes


Secrets = Mapping[str, "Mapping[str, str] | str"]  # secret id -> content, or why it is unusable
Refused = Mapping[str, str]  # secret id -> why an operator's catalog may not use it


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A catalog ready to write: every property, credentials filled in."""

    source: str
    properties: dict[str, str] = dataclasses.field(repr=False)  # credentials filled in
    credentials: frozenset[str] = frozenset()  # which properties came from a secret
    files: dict[str, str] = dataclasses.field(default_factory=dict)  # other files it needs


class CatalogSet(NamedTuple):
    """The catalogs to write, or the problems that keep the current files in place."""

    catalogs: dict[str, Resolved]
    problems: list[str]
    # PEM CAs the whole JVM must trust for these catalogs (even while they have
    # problems: the JVM's trust must not change with a refused catalog).
    jvm_cas: str = ""


def jvm_cas(catalog_files: Iterable[Mapping[str, str]]) -> str:
    """The CAs the catalogs' `*-jvm-ca.pem` files ask the whole JVM to trust."""
    return "".join(
        content
        for files in catalog_files
        for path, content in sorted(files.items())
        if path.endswith(JVM_TRUST_SUFFIX)
    )


def resolve(
    catalog: Catalog, secrets: Secrets, refused: Refused | None = None
) -> tuple[dict[str, str], list[str]]:
    """The catalog's full properties with credentials filled in from its secret.

    ``refused`` holds the secrets an operator's catalog may not use (the charm's own and
    those a relation shared), with why: a relation's catalog may use its own.
    """
    properties = {"connector.name": catalog.connector, **catalog.properties, **catalog.credentials}
    content, problems = _secret_content(catalog, secrets, refused or {})
    if content is not None:
        properties.update({prop: content[key] for prop, key in catalog.secret_properties.items()})
    problems += [
        f"the value of {name} has ${{provider:key}}, which Trino replaces with a secret and "
        "cannot read as written: change the value"
        for name, value in properties.items()
        if SECRET_REFERENCE.search(value)
    ]
    return properties, problems


def _secret_content(
    catalog: Catalog, secrets: Secrets, refused: Refused
) -> tuple[Mapping[str, str] | None, list[str]]:
    """The content of the catalog's secret (None without one), or why it cannot be used."""
    if not catalog.secret:
        return None, []
    if catalog.source in OPERATOR_SOURCES and catalog.secret in refused:
        return None, [refused[catalog.secret]]
    content = secrets.get(catalog.secret, f"secret {catalog.secret} was not looked up")
    if isinstance(content, str):
        return None, [content]
    missing = sorted(key for key in catalog.secret_properties.values() if key not in content)
    if missing:
        return None, [
            f"secret {catalog.secret} has no key {', '.join(missing)}; "
            f"it has {', '.join(sorted(content)) or 'no keys'}"
        ]
    return content, []


def ordered(properties: Mapping[str, str]) -> dict[str, str]:
    """connector.name first, then by name: how a source spells its document never matters."""
    return {"connector.name": properties["connector.name"], **dict(sorted(properties.items()))}


def admission_problems(
    catalog: Catalog,
    others: Iterable[Catalog],
    secrets: Secrets,
    refused: Refused | None = None,
    connectors: Collection[str] = CONNECTORS,
) -> list[str]:
    """Why a catalog may not join the others (from other sources); empty if it may."""
    clashes = [
        str(Clash(catalog.name, (other.source, catalog.source)))
        for other in others
        if other.name == catalog.name and other.source != catalog.source
    ]
    own = [*catalog.problems(connectors), *resolve(catalog, secrets, refused)[1]]
    return clashes + [f"catalog {catalog.name!r}: {problem}" for problem in own]


def catalog_set(
    sources: Iterable[Iterable[Catalog]],
    secrets: Secrets,
    refused: Refused | None = None,
    connectors: Collection[str] = CONNECTORS,
) -> CatalogSet:
    """Merge, check and resolve every catalog; any problem keeps the last good set."""
    merged, clashes = merge(sources)
    problems = [str(clash) for clash in clashes]
    resolved = {}
    for name, catalog in sorted(merged.items()):
        properties, secret_problems = resolve(catalog, secrets, refused)
        for problem in [*catalog.problems(connectors), *secret_problems]:
            problems.append(f"catalog {name!r} ({catalog.source}): {problem}")
        credentials = frozenset(catalog.secret_properties) | frozenset(catalog.credentials)
        resolved[name] = Resolved(
            catalog.source, ordered(properties), credentials, dict(catalog.files)
        )
    files = [catalog.files for catalog in resolved.values()]
    return CatalogSet({} if problems else resolved, problems, jvm_cas(files))
