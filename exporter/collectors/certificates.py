"""The organization's mutual-TLS certificates: ``GET /organization/certificates``.

Names follow x509-certificate-exporter: the validity window as two timestamps.

Example exposition::

    openai_certificate_info{certificate_id="cert_1",certificate_name="edge",active="true"} 1
    openai_certificate_not_before_timestamp_seconds{certificate_id="cert_1"} 1.7e9
    openai_certificate_not_after_timestamp_seconds{certificate_id="cert_1"} 1.8e9
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import Field

from exporter.collectors.base import Attempt, Collector, Family, Samples
from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient
from exporter.upstream.lister import CursorEndpoint, list_all
from exporter.upstream.models import Timestamp, Wire


class ApiCertificateDetails(Wire):
    valid_at: Timestamp | None = None
    expires_at: Timestamp | None = None


class ApiCertificate(Wire):
    id: str = Field(min_length=1)
    name: str | None = None
    created_at: Timestamp
    active: bool | None = None
    certificate_details: ApiCertificateDetails


CERTIFICATES = CursorEndpoint(
    "certificates",
    "/organization/certificates",
    ApiCertificate,
    permission="read access to the organization's certificates "
    "(Organization Administration, api.management.read)",
)


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    id: str
    name: str
    active: bool
    valid_at: int | None
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class Certificates:
    certificates: tuple[CertificateRecord, ...]

    def __len__(self) -> int:
        return len(self.certificates)


ID = ("certificate_id",)
INFO = Family(
    "openai_certificate_info",
    "One series per certificate of the organization, carrying its name and whether it is active.",
    ("certificate_id", "certificate_name", "active"),
)
NOT_BEFORE = Family(
    "openai_certificate_not_before_timestamp_seconds",
    "Unix time from which the certificate is valid.",
    ID,
)
NOT_AFTER = Family(
    "openai_certificate_not_after_timestamp_seconds",
    "Unix time at which the certificate expires.",
    ID,
)


class CertificatesCollector(Collector[Certificates]):
    name = "certificates"
    endpoints = (CERTIFICATES.name,)
    families = (INFO, NOT_BEFORE, NOT_AFTER)

    async def fetch(self, client: AdminApiClient, attempt: Attempt[Certificates]) -> None:
        listed = await list_all(client, CERTIFICATES)
        rows = Certificates(
            tuple(
                CertificateRecord(
                    id=cert.id,
                    name=cert.name or "",
                    active=bool(cert.active),  # absent: the API did not say it is active
                    valid_at=cert.certificate_details.valid_at,
                    expires_at=cert.certificate_details.expires_at,
                )
                for cert in listed
            )
        )
        attempt.build = lambda: rows

    def samples(self, rows: Certificates, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        certs = rows.certificates
        yield INFO, (((c.id, c.name, "true" if c.active else "false"), 1) for c in certs)
        yield NOT_BEFORE, (((c.id,), c.valid_at) for c in certs if c.valid_at is not None)
        yield NOT_AFTER, (((c.id,), c.expires_at) for c in certs if c.expires_at is not None)

    def summary(self, rows: Certificates) -> str:
        return f"{len(rows.certificates)} certificates"
