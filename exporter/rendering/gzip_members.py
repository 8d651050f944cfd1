"""Deflate pieces that concatenate into one gzip member, and CRC-32 combination.

The renderer compresses each collector's text on its own, once per state, and joins
the pieces at every scrape. Raw deflate blocks ending on a byte boundary (a sync
flush) concatenate into one valid stream; the gzip trailer needs the CRC-32 of the
whole text, which ``crc32_combine`` computes from the pieces' own CRCs and lengths
(zlib's algorithm, which Python's zlib does not expose), in about 1000 steps.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A gzip member header: deflate, no name, no mtime (the body is not a file), OS unknown.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
LINES_PER_CHUNK = 4096  # text is built and compressed this many lines at a time
_POLY = 0xEDB88320  # CRC-32, reflected


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (reflected bit order)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                break
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return p


def _x2n_table() -> tuple[int, ...]:
    table = [1 << 30]  # x^1
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1]))
    return tuple(table)


_X2N = _x2n_table()  # x^(2^n) modulo the polynomial


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A+B from crc32(A), crc32(B) and len(B)."""
    p = 1 << 31  # x^0
    n, k = length2, 3  # x^(8 * length2): one byte is eight bits
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


@dataclass(frozen=True, slots=True)
class Deflated:
    """Text as raw deflate blocks that end on a byte boundary, not final."""

    data: bytes
    crc: int  # crc32 of this piece's text alone
    size: int  # length of this piece's text


NOTHING = Deflated(b"", 0, 0)


class Deflater:
    """Compresses text as it comes, so no whole uncompressed copy ever exists."""

    def __init__(self, level: int) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._data: list[bytes] = []
        self._crc = 0
        self._size = 0

    def write(self, text: bytes) -> None:
        self._data.append(self._compressor.compress(text))
        self._crc = zlib.crc32(text, self._crc)
        self._size += len(text)

    def write_lines(self, lines: Iterable[str]) -> None:
        iterator = iter(lines)
        while chunk := list(itertools.islice(iterator, LINES_PER_CHUNK)):
            self.write("".join(chunk).encode())

    def flush(self) -> Deflated:
        """Everything so far, ending on a byte boundary: more blocks may follow it.

        A fresh compressor never refers back past its own start, so separately
        compressed runs concatenate into one valid deflate stream.
        """
        self._data.append(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        return Deflated(b"".join(self._data), self._crc, self._size)


def gzip_member(pieces: Sequence[Deflated], tail: bytes, level: int) -> tuple[bytes, ...]:
    """One gzip member of the pieces' text followed by ``tail`` (compressed here)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    last = compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)
    crc, size = 0, 0
    for piece in pieces:
        crc = crc32_combine(crc, piece.crc, piece.size)
        size += piece.size
    crc = zlib.crc32(tail, crc)
    size += len(tail)
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return (GZIP_HEADER, *(piece.data for piece in pieces if piece.data), last, trailer)


def inflate(piece: Deflated) -> bytes:
    return zlib.decompressobj(-zlib.MAX_WBITS).decompress(piece.data)
