"""``Authorization: Basic`` checked against the file's bcrypt hashes, with a cache of
successful checks so that bcrypt is paid once per credential, not once per scrape.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import bcrypt
from aiohttp import BasicAuth
from cachetools import LRUCache

BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; the tools that hash truncate too
VERIFIED_CACHE_SIZE = 64
MAX_PENDING_VERIFICATIONS = 32


class BasicAuthGuard:
    """Checks ``Authorization: Basic`` against bcrypt hashes, paying bcrypt once per
    credential: a successful check is remembered under an HMAC of user, hash and
    password with a key made at start (so the cache holds no password and its keys
    reveal nothing). Failures are never remembered: each costs a full bcrypt, which
    is what slows down guessing. Unknown users cost a bcrypt too, so timing does not
    tell which users exist. bcrypt runs on its own two threads, never on the event
    loop, and never more than ``MAX_PENDING_VERIFICATIONS`` wait for them."""

    def __init__(
        self, users: Mapping[str, bytes], *, checkpw: Callable[[bytes, bytes], bool] | None = None
    ) -> None:
        self._users = dict(users)
        self._checkpw = checkpw or _checkpw
        self._decoy = next(iter(self._users.values()))  # for unknown users' timing
        self._secret = secrets.token_bytes(32)
        self._verified: LRUCache[bytes, bool] = LRUCache(maxsize=VERIFIED_CACHE_SIZE)
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0

    def _cache_key(self, user: bytes, hashed: bytes, password: bytes) -> bytes:
        message = b"".join(len(part).to_bytes(4, "big") + part for part in (user, hashed, password))
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    async def check(self, header: str | None) -> bool | None:
        """True: let in; False: refuse (401); None: too many checks waiting (429)."""
        if header is None:
            return False
        try:
            credentials = BasicAuth.decode(header, encoding="utf-8")
        except ValueError:
            return False
        user = credentials.login.encode()
        password = credentials.password.encode()[:BCRYPT_MAX_PASSWORD_BYTES]
        hashed = self._users.get(credentials.login)
        key = self._cache_key(user, hashed or b"", password)
        if hashed is not None and key in self._verified:
            return True
        if self._pending >= MAX_PENDING_VERIFICATIONS:
            return None
        self._pending += 1
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(2, thread_name_prefix="bcrypt")
            loop = asyncio.get_running_loop()
            matched = await loop.run_in_executor(
                self._executor, self._checkpw, password, hashed or self._decoy
            )
        finally:
            self._pending -= 1
        if hashed is None or not matched:
            return False
        self._verified[key] = True
        return True

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a NUL byte, or a hash bcrypt cannot read
        return False
