"""The `certificates` relation: HTTPS for Trino, through charmlibs' TLSCertificatesRequiresV4.

The library speaks the protocol (CSRs, renewals, the private key in a unit secret);
this module only says which names the certificate covers and hands back the PEM
keystore Trino reads. The library (cryptography, pydantic) is imported only when
the relation exists, so most hooks never load it.
"""

from __future__ import annotations

import dataclasses
import functools
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

    keystore: str = dataclasses.field(repr=False)  # private key, certificate, chain (PEM)
    ca: str


def unit_names(unit: str, app: str, model: str) -> list[str]:
    """The names a unit's certificate covers: its pod, the application service, the app."""
    pod = unit.replace("/", "-")
    return [
        f"{pod}.{app}-endpoints.{model}.svc.cluster.local",
        f"{app}.{model}.svc.cluster.local",
        app,
    ]


@functools.cache
def _guarded_requirer() -> type[TLSCertificatesRequiresV4]:
    """The library's requirer, except that a certificate that does not parse is none.

    The library parses the provider's certificates in its own event handlers and raises
    on one that does not parse, which would fail every hook of the unit. Here such data
    reads as no certificate, and `unreadable` tells the charm, which then blocks.
    """
    from charmlibs.interfaces.tls_certificates import (  # noqa: PLC0415
        TLSCertificatesError,
        TLSCertificatesRequiresV4,
    )

    class GuardedRequirer(TLSCertificatesRequiresV4):
        unreadable = False

        def get_provider_certificates(self):
            try:
                certificates = super().get_provider_certificates()
                for provided in certificates:  # extensions parse lazily: parse them now
                    _ = provided.certificate.is_ca, provided.ca.is_ca
            except (TLSCertificatesError, ValueError) as error:
                logger.warning("ignoring the provider's unreadable certificates: %s", error)
                self.unreadable = True
                return []
            return certificates

    return GuardedRequirer


class TlsCertificate:
    """This unit's certificate, when the certificates relation exists."""

    def __init__(self, charm: ops.CharmBase, endpoint: str = ENDPOINT):
        self._requirer: TLSCertificatesRequiresV4 | None = None
        self._request: CertificateRequestAttributes | None = None
        self._relation = charm.model.get_relation(endpoint)
        if self._relation is None:
            return
        from charmlibs.interfaces.tls_certificates import (  # noqa: PLC0415
            CertificateRequestAttributes,
            Mode,
        )

        names = unit_names(charm.unit.name, charm.app.name, charm.model.name)
        self._request = CertificateRequestAttributes(
            common_name=charm.app.name, sans_dns=names, add_unique_id_to_subject_name=False
        )
        self._requirer = _guarded_requirer()(
            charm, endpoint, certificate_requests=[self._request], mode=Mode.UNIT
        )

    @property
    def related(self) -> bool:
        """Whether the certificates relation exists."""
        return self._requirer is not None

    @property
    def unreadable_from(self) -> str:
        """The provider that sent a certificate that does not parse, or empty.

        Read it after `material()`: the certificates are parsed on first use.
        """
        if not getattr(self._requirer, "unreadable", False) or self._relation is None:
            return ""
        return self._relation.app.name if self._relation.app else "the provider"

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
