"""A project id from the API goes into the URL of its key listing: it must stay one
path segment there, whatever it holds, so it cannot steer the admin key elsewhere."""

from __future__ import annotations

import time

from tests.hostile.cases import hostile_settings
from tests.support import DAY, ExporterFactory, Simulation, sample, scrape

ODD_IDS = (
    "../../organization/admin_api_keys",
    "proj?limit=1000&after=x",
    "proj#fragment",
    "proj%2F..%2F",
    "proj with spaces",
    "proj\u00e9\U0001f600",
    "proj;param",
)


async def test_odd_project_ids_stay_in_their_own_listing(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    for project_id in ODD_IDS:
        simulation.org.add_project("odd", id=project_id)
        simulation.org.add_key(project_id, "k", created_at=int(time.time()) - DAY)
    simulation.org.add_project("dots", id="..")
    samples = await scrape(await start_exporter(**hostile_settings()))
    for project_id in ODD_IDS:
        assert sample(samples, "openai_project_api_keys", project_id=project_id) == 1, project_id
    key_listings = [r for r in simulation.state.requests if r.endpoint == "api_keys"]
    assert sorted(
        r.path.split("/", 4)[4].removesuffix("/api_keys") for r in key_listings
    ) == sorted(ODD_IDS)
    assert all(r.query == {"limit": "100", "owner_project_access": "any"} for r in key_listings)
    assert [r.endpoint for r in simulation.state.requests].count("other") == 0
    # ".." cannot be one path segment: that project's listing is refused, not sent.
    assert sample(samples, "openai_project_api_keys", project_id="..") is None
    assert (
        sample(
            samples,
            "openai_exporter_refresh_errors_total",
            collector="api_keys",
            reason="bad_response",
        )
        == 1
    )
