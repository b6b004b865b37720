"""Read ahead, cooperatively: the caller asks for the next item to be made at a moment it would otherwise wait.

The CSV ingest sends a chunk's readings to PostgreSQL (COPY) and, while the server writes them, reads and parses the
next chunk of the file (pure work: no database); only then does it wait for the COPY to finish. The client and the
server work at the same time without a second thread, so nothing competes for the interpreter lock and nothing
runs outside the caller's thread and context.

At most one item is read ahead, so two are alive at once (the one being stored and the next one). What the source
raises while reading ahead is kept and raised when that item is asked for, i.e. after the current item is done, as
when iterating the source itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class ReadAhead(Generic[T]):
    """`for item in ReadAhead(source)` gives the items of `source`; `read_next()` makes the next one early."""

    def __init__(self, source: Iterator[T]) -> None:
        self._source = source
        self._next: list[T] = []  # the item read ahead, if any
        self._error: Exception | None = None
        self._done = False

    def read_next(self) -> None:
        """Read the next item now unless it is read already (or the source is finished or failed)."""
        if self._next or self._done or self._error is not None:
            return
        try:
            self._next.append(next(self._source))
        except StopIteration:
            self._done = True
        except Exception as exc:  # raised when the item is asked for
            self._error = exc

    def __iter__(self) -> Iterator[T]:
        while True:
            self.read_next()
            if self._next:
                yield self._next.pop()
                continue
            if self._error is not None:
                error, self._error = self._error, None
                self._done = True
                raise error
            return
