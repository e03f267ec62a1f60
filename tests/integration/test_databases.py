"""Integration tests of the relation catalogs: postgresql-k8s as a catalog and as the
Iceberg metastore of the lakehouse, with s3-integrator for the bucket.

Runs on its own model, in order. Channels can be overridden with
TRINO_POSTGRESQL_CHANNEL and TRINO_S3_INTEGRATOR_CHANNEL.
"""

from __future__ import annotations

import os
import pathlib

import jubilant
from tests.integration import test_charm as base

APP = base.APP
POSTGRESQL = "postgresql-k8s"
S3 = "s3-integrator"
POSTGRESQL_CHANNEL = os.environ.get("TRINO_POSTGRESQL_CHANNEL", "14/stable")
S3_CHANNEL = os.environ.get("TRINO_S3_INTEGRATOR_CHANNEL", "latest/stable")


def test_deploy_with_postgresql(juju: jubilant.Juju, charm_path: pathlib.Path) -> None:
    """Trino and PostgreSQL come up; the relation makes the `postgresql_k8s` catalog."""
    juju.deploy(charm_path, APP, resources={"trino-image": base.TRINO_IMAGE}, trust=True)
    juju.deploy(POSTGRESQL, channel=POSTGRESQL_CHANNEL, trust=True)
    juju.integrate(f"{APP}:postgresql", POSTGRESQL)
    juju.wait(
        lambda status: (
            jubilant.all_active(status, APP, POSTGRESQL)
            and jubilant.all_agents_idle(status, APP, POSTGRESQL)
        ),
        error=base.has_error,
        timeout=base.DEPLOY_TIMEOUT,
    )

    assert ["postgresql_k8s"] in base.query(juju, "SHOW CATALOGS")
    assert base.query(juju, "SELECT count(*) > 0 FROM postgresql_k8s.information_schema.tables")


def test_a_metastore_alone_says_s3_is_missing(juju: jubilant.Juju) -> None:
    """With only the metastore relation the unit names the missing s3-credentials."""
    juju.integrate(f"{APP}:metastore", POSTGRESQL)
    status = juju.wait(base.unit_is_blocked, error=base.has_error, timeout=base.SETTLE_TIMEOUT)

    unit = base.unit_status(status)
    assert unit is not None
    assert "needs object storage" in unit.workload_status.message


def test_s3_completes_the_lakehouse(juju: jubilant.Juju) -> None:
    """With s3-integrator too, the leader creates the Iceberg tables and `lakehouse` appears."""
    juju.deploy(
        S3,
        channel=S3_CHANNEL,
        config={"bucket": "lakehouse", "endpoint": "http://minio.invalid:9000", "path": "wh"},
    )
    juju.wait(lambda status: jubilant.all_blocked(status, S3), timeout=base.SETTLE_TIMEOUT)
    juju.run(
        f"{S3}/0", "sync-s3-credentials", {"access-key": "integration", "secret-key": "not-real"}
    )
    juju.integrate(f"{APP}:s3-credentials", S3)
    base.wait_active(juju, base.SETTLE_TIMEOUT)

    assert ["lakehouse"] in base.query(juju, "SHOW CATALOGS")
    # Listing schemas reads the JDBC catalog tables the charm created (not the bucket).
    assert base.query(juju, "SHOW SCHEMAS FROM lakehouse") is not None


def test_removing_postgresql_removes_its_catalog(juju: jubilant.Juju) -> None:
    """relation-broken removes the catalog file; Trino restarts without it."""
    juju.remove_relation(f"{APP}:postgresql", POSTGRESQL)
    base.wait_active(juju, base.SETTLE_TIMEOUT)

    assert ["postgresql_k8s"] not in base.query(juju, "SHOW CATALOGS")
