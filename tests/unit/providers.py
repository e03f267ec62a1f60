"""Relations as postgresql-k8s, mysql-k8s and s3-integrator fill them."""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib

from charmlibs.interfaces.tls_certificates import (
    Certificate,
    CertificateRequestAttributes,
    CertificateSigningRequest,
    PrivateKey,
)
from conftest import properties, read_files
from ops import testing

LOGIN = {"username": "relation_user_7", "password": "Rel-Pa55-w0rd"}
CA = "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----"
S3_KEYS = {"access-key": "AKIAEXAMPLE", "secret-key": "s3-Secr3t-Key"}
S3_PLAIN = {
    "bucket": "lake",
    "endpoint": "http://minio.example:9000",
    "region": "eu-west-1",
    "path": "/warehouse/",
    "s3-uri-style": "path",
}


def login_secret(content: dict[str, str] | None = None) -> testing.Secret:
    """The provider's `secret-user`, granted to us."""
    return testing.Secret(tracked_content=dict(content or LOGIN), owner=None)


def tls_secret(ca: str = CA, enabled: str = "True") -> testing.Secret:
    """The provider's `secret-tls`."""
    return testing.Secret(tracked_content={"tls": enabled, "tls-ca": ca}, owner=None)


def database_relation(
    endpoint: str,
    app: str,
    user: testing.Secret | None = None,
    *,
    database: str | None = None,
    endpoints: str = "pg-primary.db.svc.cluster.local:5432",
    tls: testing.Secret | None = None,
) -> testing.Relation:
    """A postgresql_client / mysql_client relation; provider data only when `user` is given."""
    data = {}
    if user is not None:
        data = {
            "database": database or app,
            "endpoints": endpoints,
            "read-only-endpoints": endpoints.replace("primary", "replicas"),
            "version": "16.9",
            "secret-user": user.id,
        }
        if tls is not None:
            data["secret-tls"] = tls.id
    return testing.Relation(endpoint, remote_app_name=app, remote_app_data=data)


def s3_relation(
    version: int | None,
    extra: testing.Secret | None = None,
    endpoint: str = "s3-credentials",
    app: str = "s3-integrator",
) -> testing.Relation:
    """An s3 relation as a v0 provider (plain keys) or a v1 provider (keys in a secret)."""
    data: dict[str, str] = {}
    if version == 0:
        data = {**S3_PLAIN, **S3_KEYS, "tls-ca-chain": json.dumps([])}
    elif version == 1:
        assert extra is not None
        data = {**S3_PLAIN, "secret-extra": extra.id}
    return testing.Relation(endpoint, remote_app_name=app, remote_app_data=data)


def catalog_files(etc: pathlib.Path) -> dict[str, dict[str, str]]:
    """Every catalog file, parsed, by catalog name."""
    return {
        name.removeprefix("catalog/").removesuffix(".properties"): properties(text)
        for name, text in read_files(etc).items()
        if name.startswith("catalog/")
    }


def mode(path: pathlib.Path) -> int:
    """A file's permission bits."""
    return path.stat().st_mode & 0o777


def sign(state: testing.State, relation: testing.Relation) -> testing.Relation:
    """Play the TLS provider: sign every CSR the unit published with a fresh CA."""
    ours = state.get_relation(relation.id)
    requests = json.loads(ours.local_unit_data["certificate_signing_requests"])
    ca_key = PrivateKey.generate()
    ca = Certificate.generate_self_signed_ca(
        CertificateRequestAttributes(common_name="test-ca"), ca_key, datetime.timedelta(days=30)
    )
    certificates = []
    for request in requests:
        csr = CertificateSigningRequest.from_string(request["certificate_signing_request"])
        cert = Certificate.generate(csr, ca, ca_key, datetime.timedelta(days=7))
        certificates.append(
            {
                "certificate": str(cert),
                "certificate_signing_request": str(csr),
                "ca": str(ca),
                "chain": [str(cert), str(ca)],
            }
        )
    return dataclasses.replace(ours, remote_app_data={"certificates": json.dumps(certificates)})
