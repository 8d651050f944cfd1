"""Where the admin key comes from: a setting, or a mounted file re-read each refresh."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from exporter.errors import UpstreamError


class AdminKeySource:
    """Hands out the current admin key; a rotated file is picked up without a restart."""

    def __init__(self, key: SecretStr | None = None, path: Path | None = None) -> None:
        if (key is None) == (path is None):
            raise ValueError("exactly one of key and path")
        self._key = key
        self._path = path

    def current(self) -> SecretStr:
        """The key to use now; an unreadable or empty file is an ``auth`` error."""
        if self._key is not None:
            return self._key
        assert self._path is not None
        try:
            text = self._path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            why = error.strerror if isinstance(error, OSError) else None
            raise UpstreamError(
                "auth",
                f"cannot read the admin key file {self._path}: {why or type(error).__name__}",
                endpoint="projects",
            ) from None
        if not text:
            raise UpstreamError(
                "auth", f"the admin key file {self._path} is empty", endpoint="projects"
            )
        return SecretStr(text)
