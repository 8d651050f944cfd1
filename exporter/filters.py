"""Which projects to export, by regular expressions over their id or name."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ProjectFilter:
    """Anchored matches, as in Prometheus relabelling: ``prod-.*`` matches ``prod-eu``."""

    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None

    def keeps(self, project_id: str, project_name: str) -> bool:
        def matches(pattern: re.Pattern[str]) -> bool:
            return bool(pattern.fullmatch(project_id) or pattern.fullmatch(project_name))

        if self.include is not None and not matches(self.include):
            return False
        return self.exclude is None or not matches(self.exclude)
