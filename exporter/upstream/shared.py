"""What every organization's data path shares: one ``ClientSession`` (one connection
pool) and one bound on the upstream requests in flight for the whole process.

Each organization bounds its own requests already (its collectors' listings, sized by
``--openai.concurrency``: ``organization_bound``). The shared bound sits above them: a
request takes one of its slots for as long as it is on the wire, and gives it back
before a retry's wait. The wait for a slot is not part of the request's timeout, so an
organization whose requests queue behind others' is slower, never failed for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from exporter import __version__


@dataclass(frozen=True)
class SharedUpstream:
    session: aiohttp.ClientSession
    slots: asyncio.Semaphore  # FIFO: a waiting request is served in its turn
    bound: int  # the slots' number, and the pool's limit


@asynccontextmanager
async def open_shared_upstream(bound: int) -> AsyncIterator[SharedUpstream]:
    """The session and its slots, open while the context is; ``bound`` >= 1."""
    # The pool holds as many connections as there are slots: a request that has its
    # slot never waits for a connection (that wait would count in its timeout).
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=bound),
        headers={"User-Agent": f"openai-key-exporter/{__version__}"},
    ) as session:
        yield SharedUpstream(session, asyncio.Semaphore(bound), bound)
