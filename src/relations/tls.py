"""The `certificates` relation: HTTPS for Trino, through charmlibs' TLSCertificatesRequiresV4.

The library speaks the protocol (CSRs, renewals, the private key in a unit secret);
this module only says which names the certificate covers and hands back the PEM
keystore Trino reads. The library (cryptography, pydantic) is imported only when
the relation exists, so most hooks never load it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import ops

if TYPE_CHECKING:
    from charmlibs.interfaces.tls_certificates import (
        CertificateRequestAttributes,
        TLSCertificatesRequiresV4,
    )

logger = logging.getLogger(__name__)

ENDPOINT = "certificates"


@dataclasses.dataclass(frozen=True)
class TlsMaterial:
    """What Trino needs to serve HTTPS, and what a client needs to trust it."""

    keystore: str  # private key, then the certificate and its chain (PEM)
    ca: str


def unit_names(unit: str, app: str, model: str) -> list[str]:
    """The names a unit's certificate covers: its pod, the application service, the app."""
    pod = unit.replace("/", "-")
    return [
        f"{pod}.{app}-endpoints.{model}.svc.cluster.local",
        f"{app}.{model}.svc.cluster.local",
        app,
    ]


class TlsCertificate:
    """This unit's certificate, when the certificates relation exists."""

    def __init__(self, charm: ops.CharmBase, endpoint: str = ENDPOINT):
        self._requirer: TLSCertificatesRequiresV4 | None = None
        self._request: CertificateRequestAttributes | None = None
        if not charm.model.relations.get(endpoint):
            return
        from charmlibs.interfaces.tls_certificates import (  # noqa: PLC0415
            CertificateRequestAttributes,
            Mode,
            TLSCertificatesRequiresV4,
        )

        names = unit_names(charm.unit.name, charm.app.name, charm.model.name)
        self._request = CertificateRequestAttributes(
            common_name=charm.app.name, sans_dns=names, add_unique_id_to_subject_name=False
        )
        self._requirer = TLSCertificatesRequiresV4(
            charm, endpoint, certificate_requests=[self._request], mode=Mode.UNIT
        )

    @property
    def related(self) -> bool:
        """Whether the certificates relation exists."""
        return self._requirer is not None

    def material(self) -> TlsMaterial | None:
        """The keystore and CA once the provider has signed our request, else None."""
        if self._requirer is None or self._request is None:
            return None
        provided, key = self._requirer.get_assigned_certificate(self._request)
        if provided is None or key is None:
            return None
        certificate = str(provided.certificate).strip()
        chain = [str(cert).strip() for cert in provided.chain]
        pems = [str(key).strip(), certificate, *(c for c in chain if c != certificate)]
        return TlsMaterial(keystore="\n".join(pems) + "\n", ca=str(provided.ca).strip() + "\n")
