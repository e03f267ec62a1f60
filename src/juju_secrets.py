"""Reading the Juju secrets that catalogs refer to."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import ops

logger = logging.getLogger(__name__)


def fetch(model: ops.Model, ids: Iterable[str]) -> dict[str, dict[str, str] | str]:
    """Each secret's latest content, or why it cannot be read (with the fix).

    ``refresh=True`` makes the unit track the newest revision, so a rotated
    password reaches Trino on the next `secret-changed`.
    """
    found: dict[str, dict[str, str] | str] = {}
    for secret_id in sorted(set(ids)):
        grant = f"`juju grant-secret {secret_id} {model.app.name}`"
        try:
            found[secret_id] = model.get_secret(id=secret_id).get_content(refresh=True)
        except ops.SecretNotFoundError:
            found[secret_id] = f"secret {secret_id} does not exist or is not granted: run {grant}"
        except ops.ModelError as error:
            logger.warning("cannot read secret %s: %s", secret_id, error)
            found[secret_id] = f"secret {secret_id} cannot be read (revoked?): run {grant}"
    return found
