"""Several organizations from one exporter: ``--config.file`` names them, each its own
scrape target (the multi-target pattern of blackbox_exporter and snmp_exporter)::

    organizations:
      - name: prod                       # the target name: [a-z0-9][a-z0-9_-]*, unique
        admin_key_file: /run/secrets/openai/prod
        # optional; unset values fall back to the flags and environment:
        base_url: https://api.openai.com/v1
        collectors: {usage: false}
        project_include: "team-.*"
        project_exclude: "sandbox"
        include_archived: false
      - name: staging
        admin_key_file: /run/secrets/openai/staging

``schema`` says what a valid file is (pydantic models), ``loading`` reads and checks one
(one line per problem, naming the organization), ``effective`` gives each organization
its settings, ``demo`` maps a simulated organization onto the simulator.
"""

from exporter.organizations.effective import organization_settings
from exporter.organizations.loading import load_organizations
from exporter.organizations.schema import (
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    DemoFault,
    DemoOrganization,
    OrganizationConfig,
    OrganizationsFile,
)

__all__ = [
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "DemoFault",
    "DemoOrganization",
    "OrganizationConfig",
    "OrganizationsFile",
    "load_organizations",
    "organization_settings",
]
