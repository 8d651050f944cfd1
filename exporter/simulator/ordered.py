"""An insertion-ordered collection that pages by cursor the way the Admin API does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownCursorError(LookupError):
    """`after` names no object of the collection (never existed, or deleted)."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


class OrderedCollection(Generic[T]):
    """Objects by id, in insertion order, with O(1) cursor lookup.

    The position index is rebuilt lazily after a mutation, so a listing that
    runs between mutations costs O(limit) per page, not O(n).
    """

    def __init__(self) -> None:
        self._by_id: dict[str, T] = {}
        self._ordered: list[T] | None = None
        self._position: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def __iter__(self) -> Iterator[T]:
        return iter(self._by_id.values())

    def get(self, item_id: str) -> T | None:
        return self._by_id.get(item_id)

    def item_at(self, index: int) -> T:
        """The object at `index` in insertion order (O(1) between mutations)."""
        return self._index()[0][index]

    def add(self, item_id: str, item: T) -> None:
        if item_id in self._by_id:
            raise ValueError(f"duplicate id {item_id!r}")
        self._by_id[item_id] = item
        self._invalidate()

    def replace(self, item_id: str, item: T) -> None:
        """Swap an object in place, keeping its position."""
        if item_id not in self._by_id:
            raise KeyError(item_id)
        self._by_id[item_id] = item
        self._invalidate()

    def remove(self, item_id: str) -> T:
        item = self._by_id.pop(item_id)
        self._invalidate()
        return item

    def page(
        self,
        *,
        after: str | None,
        limit: int,
        keep: Callable[[T], bool] | None = None,
        reverse: bool = False,
    ) -> Page[T]:
        """Up to `limit` kept objects that follow `after` (from the start when None).

        `reverse` walks the collection newest first; `after` then names the
        place in that reversed order, as the API's `order=desc` does.

        A cursor may name an object that `keep` filters out: paging goes on
        from its position, as a cursor is a place in the list, not a member of
        the filtered view.
        """
        ordered, position = self._index()
        found: int | None = None
        if after is not None:
            found = position.get(after)
            if found is None:
                raise UnknownCursorError(after)
        indices: range
        if reverse:
            indices = range(len(ordered) - 1 if found is None else found - 1, -1, -1)
        else:
            indices = range(0 if found is None else found + 1, len(ordered))
        items: list[T] = []
        for index in indices:
            item = ordered[index]
            if keep is not None and not keep(item):
                continue
            if len(items) == limit:
                return Page(items, has_more=True)
            items.append(item)
        return Page(items, has_more=False)

    def _index(self) -> tuple[list[T], dict[str, int]]:
        if self._ordered is None or self._position is None:
            self._ordered = list(self._by_id.values())
            self._position = {item_id: i for i, item_id in enumerate(self._by_id)}
        return self._ordered, self._position

    def _invalidate(self) -> None:
        self._ordered = None
        self._position = None
