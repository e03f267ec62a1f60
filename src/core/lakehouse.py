"""The lakehouse: an Iceberg catalog with a PostgreSQL metastore and an S3 warehouse.

The metastore is Iceberg's JDBC catalog in a PostgreSQL database; the data
lives in an S3 bucket.

Trino never creates the JDBC catalog's tables; `ICEBERG_JDBC_SCHEMA` is what
the charm runs (leader, once per database) before the catalog appears.
"""

from __future__ import annotations

import dataclasses

from core.catalogs import CERTS_DIR, JVM_TRUST_SUFFIX, MAX_NAME_LENGTH, Catalog, name_problem
from core.databases import Database, ca_path, postgresql_url

SOURCE = "metastore+s3-credentials"
DEFAULT_NAME = "lakehouse"

# The Iceberg JDBC catalog schema (Iceberg's JdbcUtil, as the Trino docs give it).
# Idempotent: safe to run against a database that already has it, or the
# older schema without `iceberg_type`.
ICEBERG_JDBC_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties ("
    "catalog_name VARCHAR(255) NOT NULL, "
    "namespace VARCHAR(255) NOT NULL, "
    "property_key VARCHAR(255), "
    "property_value VARCHAR(1000), "
    "PRIMARY KEY (catalog_name, namespace, property_key))",
    "CREATE TABLE IF NOT EXISTS iceberg_tables ("
    "catalog_name VARCHAR(255) NOT NULL, "
    "table_namespace VARCHAR(255) NOT NULL, "
    "table_name VARCHAR(255) NOT NULL, "
    "metadata_location VARCHAR(1000), "
    "previous_metadata_location VARCHAR(1000), "
    "iceberg_type VARCHAR(5), "
    "PRIMARY KEY (catalog_name, table_namespace, table_name))",
    "ALTER TABLE iceberg_tables ADD COLUMN IF NOT EXISTS iceberg_type VARCHAR(5)",
)


@dataclasses.dataclass(frozen=True)
class ObjectStorage:
    """An S3 bucket as the s3 provider describes it (v0 and v1 alike)."""

    bucket: str
    access_key: str = dataclasses.field(repr=False)
    secret_key: str = dataclasses.field(repr=False)
    endpoint: str = ""
    region: str = ""
    path: str = ""
    uri_style: str = ""  # "path" or "host"
    ca_chain: str = ""  # PEM: the endpoint's own CA chain, which the JVM must then trust

    @property
    def warehouse(self) -> str:
        """Where new Iceberg tables go: the bucket, under the provider's path."""
        path = self.path.strip("/")
        return f"s3://{self.bucket}/{path}" if path else f"s3://{self.bucket}"


def catalog_name(option: str) -> tuple[str, str | None]:
    """The `lakehouse-catalog-name` option: the name to use, and why the given one is refused."""
    name = option.strip() or DEFAULT_NAME
    if name_problem(name) is None:
        return name, None
    return DEFAULT_NAME, (
        f"lakehouse-catalog-name: {name!r} is not a catalog name; use lower case letters, "
        f"digits and underscores (at most {MAX_NAME_LENGTH}), starting with a letter, "
        "and not 'system'"
    )


def missing_half(metastore: bool, storage: bool, name: str, app: str) -> str | None:
    """Which of the two relations a lakehouse still needs, and how to add it; None if neither."""
    if metastore and not storage:
        return (
            f"lakehouse catalog {name!r} needs object storage: "
            f"`juju integrate {app}:s3-credentials s3-integrator`"
        )
    if storage and not metastore:
        return (
            f"lakehouse catalog {name!r} needs a metastore: "
            f"`juju integrate {app}:metastore postgresql-k8s`"
        )
    return None


def bootstrap_key(metastore: Database) -> str:
    """What the leader records once the schema exists: a new database or relation gets it again."""
    where = f"{metastore.app}/{metastore.name}@{','.join(metastore.hosts)}"
    return f"{metastore.endpoint}:{metastore.relation_id}:{where}"


def lakehouse_catalog(name: str, metastore: Database, storage: ObjectStorage) -> Catalog:
    """The Iceberg catalog: JDBC metastore in PostgreSQL, warehouse in the bucket."""
    properties = {
        "iceberg.catalog.type": "jdbc",
        "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
        "iceberg.jdbc-catalog.connection-url": postgresql_url(metastore, ca_path(name)),
        "iceberg.jdbc-catalog.catalog-name": name,
        "iceberg.jdbc-catalog.default-warehouse-dir": storage.warehouse,
        "fs.s3.enabled": "true",
        # The AWS SDK needs a region even for S3-compatible stores that ignore it.
        "s3.region": storage.region or "us-east-1",
        "s3.path-style-access": "true" if storage.uri_style == "path" else "false",
    }
    if storage.endpoint:
        properties["s3.endpoint"] = storage.endpoint
    files = {ca_path(name): metastore.tls_ca} if metastore.tls and metastore.tls_ca else {}
    if storage.ca_chain:
        # Trino's S3 client takes no CA of its own: the whole JVM trusts this one.
        files[f"{CERTS_DIR}/{name}{JVM_TRUST_SUFFIX}"] = storage.ca_chain
    login = metastore.login_fields("iceberg.jdbc-catalog.")
    return Catalog(
        name=name,
        connector="iceberg",
        source=SOURCE,
        properties=properties,
        secret=login.get("secret", ""),
        secret_properties=login.get("secret_properties", {}),
        files=files,
        credentials={
            **login.get("credentials", {}),
            "s3.aws-access-key": storage.access_key,
            "s3.aws-secret-key": storage.secret_key,
        },
    )
