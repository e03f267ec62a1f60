"""The pure side of relation catalogs: databases, the lakehouse, files that travel."""

from __future__ import annotations

import pytest

from core import lakehouse
from core.catalogs import Catalog, CatalogSet, catalog_set
from core.config import CharmConfig
from core.databases import Database, database_catalog, database_names, postgresql_url
from core.plan import Cluster, NodeInputs, plan_node

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def database(**changes) -> Database:
    fields = {
        "endpoint": "postgresql",
        "app": "Sales-DB",
        "name": "sales",
        "hosts": ("db-primary:5432",),
        "user_secret": "secret:abc",
    }
    return Database(**{**fields, **changes})


def storage(**changes) -> lakehouse.ObjectStorage:
    fields = {"bucket": "lake", "access_key": "AK", "secret_key": "SK-secret"}
    return lakehouse.ObjectStorage(**{**fields, **changes})


class TestCatalogFiles:
    def test_a_catalog_file_outside_the_certs_folder_is_refused(self):
        catalog = Catalog(
            "x", "tpch", "postgresql:x", files={"/etc/trino/catalog/x.pem": CA, "/tmp/y": CA}
        )

        assert catalog.problems() == [
            "files ['/etc/trino/catalog/x.pem', '/tmp/y'] are not in /etc/trino/certs"
        ]

    def test_inline_credentials_are_written_but_never_persisted_nor_shown(self):
        catalog = Catalog("x", "tpch", "s3", credentials={"s3.aws-secret-key": "SK-secret"})

        resolved = catalog_set([[catalog]], {})

        assert resolved.catalogs["x"].properties["s3.aws-secret-key"] == "SK-secret"
        assert "SK-secret" not in repr(catalog)
        assert "SK-secret" not in str(catalog.to_data())

    def test_files_travel_with_the_resolved_catalog_and_are_written_0600(self):
        path = "/etc/trino/certs/x-ca.pem"
        resolved = catalog_set([[Catalog("x", "tpch", "r", files={path: CA})]], {})

        cluster = Cluster("model", "http://trino-0:8080", "shared")
        plan = plan_node(NodeInputs(CharmConfig(), "model", "trino/0", resolved, cluster=cluster))

        assert resolved.catalogs["x"].files == {path: CA}
        assert (plan.files[path].content, plan.files[path].mode) == (CA, 0o600)
        assert "/etc/trino/certs" in plan.exclusive_dirs

    def test_with_catalog_problems_no_folder_is_cleaned(self):
        cluster = Cluster("m", "http://t-0:8080", "shared")
        plan = plan_node(
            NodeInputs(CharmConfig(), "m", "t/0", CatalogSet({}, ["bad"]), cluster=cluster)
        )

        assert plan.exclusive_dirs == ()


class TestDatabases:
    def test_app_names_become_catalog_names(self):
        assert database_catalog(database()).name == "sales_db"

    def test_several_endpoints_all_go_in_the_postgresql_url(self):
        db = database(hosts=("a:5432", "b:5433"))

        assert postgresql_url(db, "/ca") == "jdbc:postgresql://a:5432,b:5433/sales"

    def test_tls_without_a_ca_is_required_but_not_verified(self):
        assert postgresql_url(database(tls=True), "/ca").endswith("?ssl=true&sslmode=require")

    def test_a_database_name_is_url_encoded(self):
        assert postgresql_url(database(name="a b/c"), "/ca").endswith("/a%20b%2Fc")

    @pytest.mark.parametrize(
        ("endpoint", "hosts", "port"),
        [("mysql", ("m",), 3306), ("postgresql", ("p",), 5432), ("mysql", ("m:3307",), 3307)],
    )
    def test_the_default_port_follows_the_engine(self, endpoint, hosts, port):
        assert database(endpoint=endpoint, hosts=hosts).port == port

    def test_mysql_without_tls_uses_the_driver_default(self):
        catalog = database_catalog(database(endpoint="mysql", hosts=("m:3306",)))

        assert catalog.properties == {"connection-url": "jdbc:mysql://m:3306"}
        assert catalog.files == {}


class TestLakehouse:
    def test_aws_defaults_host_style_no_endpoint_and_a_region(self):
        catalog = lakehouse.lakehouse_catalog("lake", database(), storage(uri_style="host"))

        assert catalog.properties["s3.path-style-access"] == "false"
        assert catalog.properties["s3.region"] == "us-east-1"
        assert "s3.endpoint" not in catalog.properties
        assert catalog.properties["iceberg.jdbc-catalog.default-warehouse-dir"] == "s3://lake"
        assert catalog.problems() == []

    @pytest.mark.parametrize(("option", "name"), [("", "lakehouse"), (" lake_2 ", "lake_2")])
    def test_the_catalog_name_option(self, option, name):
        assert lakehouse.catalog_name(option) == (name, None)

    @pytest.mark.parametrize("option", ["system", "2lake", "Lake"])
    def test_a_bad_catalog_name_is_refused_naming_the_option(self, option):
        name, problem = lakehouse.catalog_name(option)

        assert name == "lakehouse"
        assert problem is not None
        assert problem.startswith(f"lakehouse-catalog-name: {option!r} is not a catalog name")

    def test_neither_relation_means_nothing_is_missing(self):
        assert lakehouse.missing_half(metastore=False, storage=False, name="l", app="t") is None

    @pytest.mark.parametrize("change", [{"name": "other"}, {"relation_id": 7}, {"hosts": ("h",)}])
    def test_a_new_metastore_database_or_relation_gets_a_new_bootstrap_key(self, change):
        assert lakehouse.bootstrap_key(database()) != lakehouse.bootstrap_key(database(**change))


@pytest.mark.parametrize(
    ("document", "names"),
    [({}, {}), ({"pg": "sales"}, {"pg": "sales"}), (None, None), ({"pg": ""}, None),
     (["pg"], None), ({"pg": 1}, None)],
)  # fmt: skip
def test_database_names(document, names):
    found, problem = database_names(document)

    if names is None:
        assert (found, problem is not None) == ({}, True)
    else:
        assert (found, problem) == (names, None)
