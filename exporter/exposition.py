"""What ``/metrics`` writes for the inventory: the text of each snapshot rendered once.

A scrape of a large organization is almost all label text, and that text only
changes when the snapshot does. So, once per snapshot (lazily, at its first
scrape), ``InventoryRenderer`` renders every series whose value the snapshot fixes
(info, key counts, timestamps, never_used) to bytes, and turns the two families
whose values move with the clock (age and idle) into a ``%d`` template holding
their label text. A scrape then only formats two integers per key. For gzip, the
fixed text is compressed once too, and the per-scrape deflate blocks are appended
to it: the result is one ordinary gzip member.

Ages are whole seconds (``floor(now)`` minus the API's whole-second timestamps),
so within one second the age text cannot change and its compressed form is reused
by concurrent scrapes. The families, their help and the samples are exactly those
of ``exporter.collector.InventoryCollector``, the plain reference implementation.
The text is valid for both the 0.0.4 text format and OpenMetrics: these families
need the same escaping in both, and the caller appends the exporter's own metrics
(and OpenMetrics' ``# EOF``) in the negotiated format.
"""

from __future__ import annotations

import struct
import threading
import zlib
from dataclasses import dataclass

from exporter.collector import (
    KEY_AGE,
    KEY_CREATED,
    KEY_IDLE,
    KEY_INFO,
    KEY_LAST_USED,
    KEY_NEVER_USED,
    PROJECT_INFO,
    PROJECT_KEYS,
    Family,
    cached_note,
    scrape_second,
)
from exporter.snapshot import Inventory

# A gzip member header: deflate, no name, no mtime (the body is not a file), OS unknown.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FIXED_LEVEL = 6  # compressed once per snapshot: worth a better ratio
_MOVING_LEVEL = 1  # compressed at every new second: speed first (~10% larger)


def escape_label_value(value: str) -> str:
    """Backslash, newline and double quote escaped, as both exposition formats want."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class _Deflated:
    """Text compressed as raw deflate blocks that end on a byte boundary, not final."""

    data: bytes
    crc: int  # crc32 of all the text up to the end of this piece
    size: int  # length of all the text up to the end of this piece


@dataclass(frozen=True, slots=True)
class _Moving:
    """The age and idle families as templates: label text fixed, values per scrape."""

    age_template: bytes
    created: tuple[int, ...]
    idle_template: bytes
    idle_since: tuple[int, ...]  # last use, or creation for keys never used
    newest: int  # the latest of all those timestamps: ages below it need clamping


class _Prepared:
    """Everything about one snapshot's text that no scrape changes."""

    def __init__(self, inventory: Inventory, fixed: bytes, moving: _Moving) -> None:
        self.inventory = inventory  # held for the identity check, which must not be reused
        self.fixed = fixed
        self.moving = moving
        self.fixed_deflated: _Deflated | None = None  # at the first gzip scrape
        self.moving_deflated: tuple[int, _Deflated] | None = None  # (second, text)


class InventoryRenderer:
    """Renders snapshots for one app; keeps the prepared text of the latest one only.

    Thread-safe: scrapes render in executor threads.
    """

    def __init__(self, *, ttl: float, owner_email: bool) -> None:
        note = cached_note(ttl)
        self._owner_email = owner_email
        self._headers = {family.name: _header(family, note) for family in _ALL}
        self._prepared: _Prepared | None = None
        self._lock = threading.Lock()

    def render(
        self, inventory: Inventory | None, *, now: float, tail: bytes = b"", gzip: bool = False
    ) -> tuple[bytes, ...]:
        """The body as pieces to write in order; ``tail`` (already encoded) goes last.

        With ``gzip`` the pieces together are one gzip member of the same text.
        """
        if inventory is None:
            if not gzip:
                return (tail,)
            return (_GZIP_HEADER, *_finish(_Deflated(b"", 0, 0), tail))
        prepared = self._prepare(inventory)
        second = scrape_second(now)
        if not gzip:
            age, idle = self._moving_text(prepared.moving, second)
            return (prepared.fixed, age, idle, tail)
        moving = self._moving_deflated(prepared, second)
        return (
            _GZIP_HEADER,
            self._fixed_deflated(prepared).data,
            moving.data,
            *_finish(moving, tail),
        )

    def render_text(self, inventory: Inventory | None, *, now: float) -> bytes:
        """The inventory families alone, uncompressed: for tests and tools."""
        return b"".join(self.render(inventory, now=now))

    def _prepare(self, inventory: Inventory) -> _Prepared:
        with self._lock:
            prepared = self._prepared
            if prepared is None or prepared.inventory is not inventory:
                self._prepared = prepared = None  # let the old text go before building anew
                prepared = self._prepared = self._build(inventory)
            return prepared

    def _fixed_deflated(self, prepared: _Prepared) -> _Deflated:
        with self._lock:
            if prepared.fixed_deflated is None:
                prepared.fixed_deflated = _deflate(
                    _FIXED_LEVEL, (prepared.fixed,), _Deflated(b"", 0, 0)
                )
            return prepared.fixed_deflated

    def _moving_deflated(self, prepared: _Prepared, second: int) -> _Deflated:
        fixed = self._fixed_deflated(prepared)
        with self._lock:  # one rendering per second, however many scrapes share it
            cached = prepared.moving_deflated
            if cached is None or cached[0] != second:
                text = self._moving_text(prepared.moving, second)
                cached = prepared.moving_deflated = (second, _deflate(_MOVING_LEVEL, text, fixed))
            return cached[1]

    def _moving_text(self, moving: _Moving, second: int) -> tuple[bytes, bytes]:
        if second >= moving.newest:
            ages = tuple([second - created for created in moving.created])
            idles = tuple([second - since for since in moving.idle_since])
        else:  # a timestamp in the future (clock skew): ages never go negative
            ages = tuple([max(0, second - created) for created in moving.created])
            idles = tuple([max(0, second - since) for since in moving.idle_since])
        return (
            self._headers[KEY_AGE.name] + moving.age_template % ages,
            self._headers[KEY_IDLE.name] + moving.idle_template % idles,
        )

    def _build(self, inventory: Inventory) -> _Prepared:
        owner_email = self._owner_email
        project_info: list[bytes] = []
        key_counts: list[str] = []
        key_info: list[bytes] = []
        created: list[str] = []
        last_used: list[str] = []
        never_used: list[str] = []
        age: list[str] = []
        idle: list[str] = []
        created_at: list[int] = []
        idle_since: list[int] = []
        for project in inventory.projects:
            project_id = escape_label_value(project.id)
            project_info.append(
                f'{PROJECT_INFO.name}{{project_id="{project_id}",'
                f'project_name="{escape_label_value(project.name)}",'
                f'status="{escape_label_value(project.status)}"}} 1\n'.encode()
            )
            if project.keys is None:
                continue
            key_counts.append(
                f'{PROJECT_KEYS.name}{{project_id="{project_id}"}} {len(project.keys)}\n'
            )
            for key in project.keys:
                key_id = escape_label_value(key.id)
                ids = f'{{project_id="{project_id}",api_key_id="{key_id}"}} '
                email = (
                    f',owner_email="{escape_label_value(key.owner_email)}"' if owner_email else ""
                )
                key_info.append(
                    f'{KEY_INFO.name}{{project_id="{project_id}",api_key_id="{key_id}",'
                    f'api_key_name="{escape_label_value(key.name)}",'
                    f'owner_type="{escape_label_value(key.owner_type)}",'
                    f'owner_id="{escape_label_value(key.owner_id)}",'
                    f'owner_name="{escape_label_value(key.owner_name)}",'
                    f'owner_project_access="{escape_label_value(key.owner_project_access)}"'
                    f"{email}}} 1\n".encode()
                )
                created.append(f"{KEY_CREATED.name}{ids}{key.created_at}\n")
                # The templates are %-formatted: a literal % in an id must be doubled.
                template_ids = ids.replace("%", "%%")
                age.append(f"{KEY_AGE.name}{template_ids}%d\n")
                idle.append(f"{KEY_IDLE.name}{template_ids}%d\n")
                created_at.append(key.created_at)
                if key.last_used_at is None:
                    never_used.append(f"{KEY_NEVER_USED.name}{ids}1\n")
                    idle_since.append(key.created_at)
                else:
                    last_used.append(f"{KEY_LAST_USED.name}{ids}{key.last_used_at}\n")
                    never_used.append(f"{KEY_NEVER_USED.name}{ids}0\n")
                    idle_since.append(key.last_used_at)
        headers = self._headers
        fixed = b"".join(
            (
                headers[PROJECT_INFO.name],
                *project_info,
                headers[PROJECT_KEYS.name],
                "".join(key_counts).encode(),
                headers[KEY_INFO.name],
                *key_info,
                headers[KEY_CREATED.name],
                "".join(created).encode(),
                headers[KEY_LAST_USED.name],
                "".join(last_used).encode(),
                headers[KEY_NEVER_USED.name],
                "".join(never_used).encode(),
            )
        )
        moving = _Moving(
            age_template="".join(age).encode(),
            created=tuple(created_at),
            idle_template="".join(idle).encode(),
            idle_since=tuple(idle_since),
            newest=max((*created_at, *idle_since), default=0),
        )
        return _Prepared(inventory, fixed, moving)


# Fixed families first, then the two that move with the clock.
_ALL = (
    PROJECT_INFO,
    PROJECT_KEYS,
    KEY_INFO,
    KEY_CREATED,
    KEY_LAST_USED,
    KEY_NEVER_USED,
    KEY_AGE,
    KEY_IDLE,
)


def _header(family: Family, note: str) -> bytes:
    help_text = family.help + note
    # The text format escapes \ and newline in HELP, OpenMetrics also ": with none of
    # them present, one header serves both formats.
    if any(char in help_text for char in '\\\n"'):
        raise ValueError(f"help of {family.name} needs format-specific escaping")
    return f"# HELP {family.name} {help_text}\n# TYPE {family.name} gauge\n".encode()


def _deflate(level: int, pieces: tuple[bytes, ...], before: _Deflated) -> _Deflated:
    """``pieces`` as deflate blocks that may follow ``before``'s in one stream.

    A fresh compressor never refers back past its own start, and a sync flush ends
    on a byte boundary, so separately compressed runs concatenate into one stream.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = [compressor.compress(piece) for piece in pieces]
    data.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    crc, size = before.crc, before.size
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
        size += len(piece)
    return _Deflated(b"".join(data), crc, size)


def _finish(before: _Deflated, tail: bytes) -> tuple[bytes, bytes]:
    """The last deflate block (holding ``tail``) and the gzip trailer."""
    compressor = zlib.compressobj(_FIXED_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    last = compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(tail, before.crc)
    size = before.size + len(tail)
    return last, struct.pack("<II", crc, size & 0xFFFFFFFF)
