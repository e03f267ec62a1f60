"""Creating the Iceberg JDBC catalog tables in the metastore database (pg8000).

Runs on the leader only, once per database (the peer data remembers it), so
hooks with nothing new never open a connection. All statements run in one
transaction: a failure leaves no partial schema behind.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core.databases import Database
from core.lakehouse import ICEBERG_JDBC_SCHEMA

logger = logging.getLogger(__name__)

# SQLSTATE classes and codes worth naming to the operator.
_REASONS = {
    "28P01": "the password was refused",
    "28000": "the login was refused",
    "3D000": "the database does not exist",
    "42501": "the user may not create tables there",
}


class MetastoreError(Exception):
    """The schema could not be created; the message names why, never a credential."""


def create_schema(
    database: Database,
    username: str,
    password: str,
    *,
    statements: Sequence[str] = ICEBERG_JDBC_SCHEMA,
    timeout: float = 10.0,
) -> None:
    """Run the schema statements in one transaction, or raise MetastoreError."""
    import ssl  # noqa: PLC0415  (lazy: only the leader, once per database, gets here)

    import pg8000.native  # noqa: PLC0415

    where = f"database {database.name!r} on {database.host}:{database.port}"
    ssl_context = None
    if database.tls:
        try:
            ssl_context = ssl.create_default_context(cadata=database.tls_ca or None)
        except (ssl.SSLError, ValueError):
            raise MetastoreError(
                f"the TLS CA that {database.app} sent for database {database.name!r} is not "
                "a PEM certificate"
            ) from None
        if not database.tls_ca:  # TLS without a CA to check against: encrypted, unverified
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
    try:
        connection = pg8000.native.Connection(
            username,
            host=database.host.strip("[]"),  # an IPv6 address goes without its brackets
            port=database.port,
            database=database.name,
            password=password,
            ssl_context=ssl_context,
            timeout=timeout,
        )
    except pg8000.native.DatabaseError as error:
        raise MetastoreError(f"cannot log in to {where}: {_reason(error)}") from None
    except (pg8000.native.InterfaceError, OSError) as error:
        raise MetastoreError(f"cannot reach {where}: {_brief(error)}") from None
    try:
        connection.run("BEGIN")
        for statement in statements:
            connection.run(statement)
        connection.run("COMMIT")
    except pg8000.native.DatabaseError as error:
        raise MetastoreError(
            f"cannot create the Iceberg tables in {where}: {_reason(error)}"
        ) from None
    except (pg8000.native.InterfaceError, OSError) as error:
        raise MetastoreError(f"lost the connection to {where}: {_brief(error)}") from None
    finally:
        try:
            connection.close()
        except (pg8000.native.InterfaceError, OSError):  # already gone
            pass
    logger.info("the Iceberg JDBC catalog tables exist in %s", where)


def _reason(error: Exception) -> str:
    """The server's SQLSTATE as words, without echoing its message (it may name the user)."""
    details = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    code = str(details.get("C", ""))
    return _REASONS.get(code, f"PostgreSQL error {code or 'without a code'}")


def _brief(error: Exception) -> str:
    """The network cause (`Connection refused`, `timed out`) or the driver's own words."""
    cause = error if isinstance(error, OSError) else error.__cause__
    if isinstance(cause, OSError):
        return cause.strerror or str(cause) or type(cause).__name__
    return str(error)
