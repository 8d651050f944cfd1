"""Where the admin key comes from: a setting, or a mounted file re-read each refresh."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr

from exporter.upstream.errors import UpstreamError


class AdminKeySource:
    """Hands out the current admin key; a rotated file is picked up without a restart."""

    def __init__(self, key: SecretStr | None = None, path: Path | None = None) -> None:
        if (key is None) == (path is None):
            raise ValueError("exactly one of key and path")
        self._key = key
        self._path = path

    def current(self) -> SecretStr:
        """The key to use now; an unreadable or empty file is an ``auth`` error, and so
        is a key that no Authorization header can carry (a second line, a control
        character), which would otherwise crash every refresh."""
        if self._key is not None:
            # Stripped like the file: a Secret made from a file often ends in a newline.
            return _checked(SecretStr(self._key.get_secret_value().strip()), "OPENAI_ADMIN_KEY")
        assert self._path is not None
        try:
            text = self._path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            why = error.strerror if isinstance(error, OSError) else None
            raise UpstreamError(
                "auth",
                f"cannot read the admin key file {self._path}: {why or type(error).__name__}",
                endpoint="",  # the collector that asked fills it in
            ) from None
        if not text:
            raise UpstreamError("auth", f"the admin key file {self._path} is empty", endpoint="")
        return _checked(SecretStr(text), f"the admin key file {self._path}")


_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # visible ASCII: what API keys are made of


def _checked(key: SecretStr, where: str) -> SecretStr:
    if not _HEADER_SAFE.fullmatch(key.get_secret_value()):
        # Never the key, nor where in it: only that it cannot be sent.
        raise UpstreamError(
            "auth",
            f"{where} holds whitespace, a control character or non-ASCII inside the key; "
            "an API key is one line of visible ASCII",
            endpoint="",  # the collector that asked fills it in
        )
    return key
