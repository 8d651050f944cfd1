"""What ``/metrics`` writes for the inventory: the text of each snapshot rendered once.

A scrape of a large organization is almost all label text, and that text only
changes when the snapshot does. So, once per snapshot (lazily, at its first
scrape), ``InventoryRenderer`` renders every series whose value the snapshot fixes
(info, key counts, timestamps, never_used) and keeps that text compressed, and
turns the two families whose values move with the clock (age and idle) into
``%d`` templates holding their label text. A scrape then only formats two integers
per key and appends them, compressed, to the compressed fixed text: the result is
one ordinary gzip member. A scrape without gzip inflates the fixed text instead;
keeping it compressed is what holds memory under 2 KB per key.

Ages are whole seconds (``floor(now)`` minus the API's whole-second timestamps),
so within one second the age text cannot change and its compressed form is reused
by concurrent scrapes. The families, their help and the samples are exactly those
of ``exporter.collector.InventoryCollector``, the plain reference implementation.
The text is valid for both the 0.0.4 text format and OpenMetrics: these families
need the same escaping in both, and the caller appends the exporter's own metrics
(and OpenMetrics' ``# EOF``) in the negotiated format.
"""

from __future__ import annotations

import itertools
import struct
import threading
import zlib
from collections.abc import Iterable
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
from exporter.snapshot import ApiKeyRecord, Inventory

# A gzip member header: deflate, no name, no mtime (the body is not a file), OS unknown.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FIXED_LEVEL = 6  # compressed once per snapshot: worth a better ratio
_MOVING_LEVEL = 1  # compressed at every new second: speed first (~10% larger)
_LINES_PER_CHUNK = 4096  # text is built and compressed this many lines at a time


def escape_label_value(value: str) -> str:
    """Backslash, newline and double quote escaped, as both exposition formats want."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class _Deflated:
    """Text compressed as raw deflate blocks that end on a byte boundary, not final."""

    data: bytes
    crc: int  # crc32 of all the text up to the end of this piece
    size: int  # length of all the text up to the end of this piece


_NOTHING = _Deflated(b"", 0, 0)


class _Deflater:
    """Compresses text as it comes, so no whole uncompressed copy ever exists."""

    def __init__(self, level: int, before: _Deflated = _NOTHING) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._data: list[bytes] = []
        self._crc = before.crc
        self._size = before.size

    def write(self, text: bytes) -> None:
        self._data.append(self._compressor.compress(text))
        self._crc = zlib.crc32(text, self._crc)
        self._size += len(text)

    def write_lines(self, lines: Iterable[str]) -> None:
        iterator = iter(lines)
        while chunk := list(itertools.islice(iterator, _LINES_PER_CHUNK)):
            self.write("".join(chunk).encode())

    def flush(self) -> _Deflated:
        """Everything so far, ending on a byte boundary: more blocks may follow it.

        A fresh compressor never refers back past its own start, so separately
        compressed runs concatenate into one valid deflate stream.
        """
        self._data.append(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        return _Deflated(b"".join(self._data), self._crc, self._size)


@dataclass(frozen=True, slots=True)
class _Moving:
    """The age and idle families as templates: label text fixed, values per scrape."""

    age_template: bytes
    created: tuple[int, ...]
    idle_template: bytes
    idle_since: tuple[int, ...]  # last use, or creation for keys never used
    newest: int  # the latest of all those timestamps: ages below it need clamping


@dataclass(slots=True)
class _Prepared:
    """Everything about one snapshot's text that no scrape changes."""

    inventory: Inventory  # held for the identity check, so its id cannot be reused
    fixed: _Deflated
    moving: _Moving
    moving_deflated: tuple[int, _Deflated] | None = None  # (second, its text) last gzipped


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
            return (_GZIP_HEADER, *_finish(_NOTHING, tail)) if gzip else (tail,)
        prepared = self._prepare(inventory)
        second = scrape_second(now)
        if gzip:
            moving = self._moving_deflated(prepared, second)
            return (_GZIP_HEADER, prepared.fixed.data, moving.data, *_finish(moving, tail))
        fixed = zlib.decompressobj(-zlib.MAX_WBITS).decompress(prepared.fixed.data)
        return (fixed, *self._moving_text(prepared.moving, second), tail)

    def render_text(self, inventory: Inventory | None, *, now: float) -> bytes:
        """The inventory families alone, uncompressed: for tests and tools."""
        return b"".join(self.render(inventory, now=now))

    def _prepare(self, inventory: Inventory) -> _Prepared:
        with self._lock:  # one preparation per snapshot, however many scrapes wait for it
            prepared = self._prepared
            if prepared is None or prepared.inventory is not inventory:
                self._prepared = prepared = None  # let the old text go before building anew
                prepared = self._prepared = self._build(inventory)
            return prepared

    def _moving_deflated(self, prepared: _Prepared, second: int) -> _Deflated:
        with self._lock:  # one rendering per second, however many scrapes share it
            cached = prepared.moving_deflated
            if cached is None or cached[0] != second:
                deflater = _Deflater(_MOVING_LEVEL, prepared.fixed)
                for text in self._moving_text(prepared.moving, second):
                    deflater.write(text)
                cached = prepared.moving_deflated = (second, deflater.flush())
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
        projects = [(escape_label_value(p.id), p) for p in inventory.projects]
        keys = [(pid, key) for pid, project in projects for key in project.keys or ()]
        ids = [
            f'{{project_id="{pid}",api_key_id="{escape_label_value(k.id)}"}} ' for pid, k in keys
        ]
        headers = self._headers
        fixed = _Deflater(_FIXED_LEVEL)
        # One family after the other, as the formats require, each compressed as it goes.
        fixed.write(headers[PROJECT_INFO.name])
        fixed.write_lines(
            f'{PROJECT_INFO.name}{{project_id="{pid}",'
            f'project_name="{escape_label_value(project.name)}",'
            f'status="{escape_label_value(project.status)}"}} 1\n'
            for pid, project in projects
        )
        fixed.write(headers[PROJECT_KEYS.name])
        fixed.write_lines(
            f'{PROJECT_KEYS.name}{{project_id="{pid}"}} {len(project.keys)}\n'
            for pid, project in projects
            if project.keys is not None
        )
        fixed.write(headers[KEY_INFO.name])
        fixed.write_lines(self._info_line(pid, key) for pid, key in keys)
        fixed.write(headers[KEY_CREATED.name])
        fixed.write_lines(
            f"{KEY_CREATED.name}{label}{key.created_at}\n"
            for label, (_, key) in zip(ids, keys, strict=True)
        )
        fixed.write(headers[KEY_LAST_USED.name])
        fixed.write_lines(
            f"{KEY_LAST_USED.name}{label}{key.last_used_at}\n"
            for label, (_, key) in zip(ids, keys, strict=True)
            if key.last_used_at is not None
        )
        fixed.write(headers[KEY_NEVER_USED.name])
        fixed.write_lines(
            f"{KEY_NEVER_USED.name}{label}{1 if key.last_used_at is None else 0}\n"
            for label, (_, key) in zip(ids, keys, strict=True)
        )
        # The templates are %-formatted: a literal % in an id must be doubled.
        templates = [label.replace("%", "%%") + "%d\n" for label in ids]
        created = tuple(key.created_at for _, key in keys)
        idle_since = tuple(
            key.created_at if key.last_used_at is None else key.last_used_at for _, key in keys
        )
        moving = _Moving(
            age_template=_joined(KEY_AGE.name, templates),
            created=created,
            idle_template=_joined(KEY_IDLE.name, templates),
            idle_since=idle_since,
            newest=max((*created, *idle_since), default=0),
        )
        return _Prepared(inventory, fixed.flush(), moving)

    def _info_line(self, project_id: str, key: ApiKeyRecord) -> str:
        email = f',owner_email="{escape_label_value(key.owner_email)}"' if self._owner_email else ""
        return (
            f'{KEY_INFO.name}{{project_id="{project_id}",'
            f'api_key_id="{escape_label_value(key.id)}",'
            f'api_key_name="{escape_label_value(key.name)}",'
            f'owner_type="{escape_label_value(key.owner_type)}",'
            f'owner_id="{escape_label_value(key.owner_id)}",'
            f'owner_name="{escape_label_value(key.owner_name)}",'
            f'owner_project_access="{escape_label_value(key.owner_project_access)}"'
            f"{email}}} 1\n"
        )


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


def _joined(name: str, templates: list[str]) -> bytes:
    text = bytearray()
    for start in range(0, len(templates), _LINES_PER_CHUNK):
        chunk = templates[start : start + _LINES_PER_CHUNK]
        text += "".join([name + template for template in chunk]).encode()
    return bytes(text)


def _finish(before: _Deflated, tail: bytes) -> tuple[bytes, bytes]:
    """The last deflate block (holding ``tail``) and the gzip trailer."""
    compressor = zlib.compressobj(_FIXED_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    last = compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(tail, before.crc)
    size = before.size + len(tail)
    return last, struct.pack("<II", crc, size & 0xFFFFFFFF)
