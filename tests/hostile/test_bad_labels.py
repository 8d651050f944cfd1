"""Label values of any Unicode, end to end: simulator JSON, client, snapshot, /metrics.

Each example's names come back unchanged from both exposition formats, parsed by
prometheus_client; afterwards the whole exposition (every example's series at
once) passes ``promtool check metrics``: one promtool run for the whole property.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator.organization import SimServiceAccount, SimUser
from tests.hostile.labels import OPENMETRICS, ThreadedExporter
from tests.support import DAY, assert_promtool_accepts

# Any character a JSON string can carry (lone surrogates cannot be UTF-8).
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
# Project ids travel in the URL of the key listing, and the simulator's router cannot
# match a path segment with braces or a slash (the exporter quotes them fine).
routable = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="{}/"), max_size=24)
AWKWARD = '"\\\n\\n\r\x00\u2028\u2029}{a="b"} # HELP x\ufeff\U0001f600\t '
ROUTABLE_AWKWARD = AWKWARD.replace("{", "(").replace("}", ")")


@dataclass(frozen=True)
class Names:
    project_id: str
    project_name: str
    key_id: str
    key_name: str
    owner_id: str
    owner_name: str
    owner_email: str
    service_account: bool

    def expected_info(self, project_id: str, key_id: str) -> dict[str, str]:
        return {
            "project_id": project_id,
            "api_key_id": key_id,
            "api_key_name": self.key_name,
            "owner_type": "service_account" if self.service_account else "user",
            "owner_id": self.owner_id,
            "owner_name": self.owner_name,
            "owner_project_access": "active",
            "owner_email": "" if self.service_account else self.owner_email,
        }


names = st.builds(Names, routable, text, text, text, text, text, text, st.booleans())


@pytest.fixture(scope="module")
def exporter() -> Iterator[ThreadedExporter]:
    with ThreadedExporter() as running:
        yield running


def _info_series(exposition: str, parse: object, key_id: str) -> list[dict[str, str]]:
    return [
        dict(sample.labels)
        for family in parse(exposition)  # type: ignore[operator]
        for sample in family.samples
        if sample.name == "openai_api_key_info" and sample.labels["api_key_id"] == key_id
    ]


def test_any_unicode_label_value_survives_both_formats_and_promtool(
    exporter: ThreadedExporter,
) -> None:
    counter = iter(range(10**6))

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(names)
    @example(Names(ROUTABLE_AWKWARD, AWKWARD, AWKWARD, AWKWARD, AWKWARD, AWKWARD, AWKWARD, False))
    @example(Names("..", "..", "%2F", "?#", "\\", "", "", service_account=True))
    def one(generated: Names) -> None:
        n = next(counter)
        # Unique ids whatever was drawn: the examples accumulate in one organization.
        project_id, key_id = f"proj{n}{generated.project_id}", f"key{n}{generated.key_id}"
        owner: SimUser | SimServiceAccount
        if generated.service_account:
            owner = SimServiceAccount(
                id=generated.owner_id, name=generated.owner_name, role="member", created_at=0
            )
        else:
            owner = SimUser(
                id=generated.owner_id,
                name=generated.owner_name,
                email=generated.owner_email,
                role="member",
                created_at=0,
            )
        exporter.org.add_project(generated.project_name, id=project_id)
        exporter.org.add_key(
            project_id,
            generated.key_name,
            id=key_id,
            created_at=int(time.time()) - DAY,
            owner=owner,
        )
        expected = generated.expected_info(project_id, key_id)
        for accept, parse in (
            ("", text_string_to_metric_families),
            (OPENMETRICS, openmetrics_families),
        ):
            exposition = exporter.call(exporter.scrape(accept))
            assert _info_series(exposition, parse, key_id) == [expected]

    one()
    exposition = exporter.call(exporter.scrape())
    assert exposition.count("openai_api_key_info{") >= 60
    assert_promtool_accepts(exposition)
