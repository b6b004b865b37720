"""Combining concurrent requests of one process into batches (the "flat combining" pattern, as a database's group
commit does for its log): a caller hands its request over and waits; while fewer than `leaders` batches run, the
oldest waiting request becomes a leader: it takes every request waiting at that moment (up to a limit) and runs
them together; when the batch is done, each caller gets its own result or its own exception, and the oldest
requests still waiting become the next leaders. With more than one leader, one batch can be prepared while
another waits for the database.

No thread runs in the background and nothing is delayed on purpose: a request that arrives alone is run at once,
alone; requests that arrive while a batch runs form the next batch. A new leader only lets the other threads run
once (a zero sleep) before it takes its batch, so that the callers just answered can hand in their next requests.
Requests whose conflict keys meet (two requests that touch the same account, say) never share a batch and never
run in two batches at once, so that a batch may treat its requests as independent and never waits for another
batch's locks; the later one waits for a following batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


#: how many times at most a new leader gives way to other threads while new requests keep arriving
_YIELDS = 4


@dataclass(eq=False)
class _Slot(Generic[T, R]):
    item: T
    keys: frozenset[Hashable]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    finished: bool = False
    result: R | None = None
    error: BaseException | None = None


class Combiner(Generic[T, R]):
    """Runs requests submitted from concurrent threads in batches through `run`, which takes the requests of one
    batch (in arrival order) and returns one outcome per request, in the same order: a result, or an exception
    for that request alone. If `run` itself raises, every request of the batch gets that exception.

    `conflicts(item)` gives the keys a request touches; two requests with a key in common are never in one batch,
    nor in two batches running at the same time (so batches never wait for each other's locks in `run`).
    `limit` caps the size of a batch, `leaders` the batches running at once. `batches` and `combined` count what
    was run."""

    def __init__(
        self,
        run: Callable[[Sequence[T]], Sequence[R | BaseException]],
        *,
        conflicts: Callable[[T], Iterable[Hashable]] = lambda _item: (),
        limit: int = 64,
        leaders: int = 1,
    ) -> None:
        if limit < 1 or leaders < 1:
            raise ValueError("a batch holds at least one request, and at least one batch runs")
        self._run = run
        self._conflicts = conflicts
        self._limit = limit
        self._leaders = leaders
        self._lock = threading.Lock()
        self._queue: list[_Slot[T, R]] = []
        self._running = 0
        self._active: set[Hashable] = (
            set()
        )  # keys of the running batches and of the leaders about to start one
        self.batches = 0
        self.combined = 0

    def submit(self, item: T) -> R:
        """Run `item` (in a batch with whatever else is waiting) and return its result or raise its exception."""
        slot: _Slot[T, R] = _Slot(item, frozenset(self._conflicts(item)))
        with self._lock:
            self._queue.append(slot)
            self._start_leaders()
        slot.done.wait()  # set when a leader finished this request, or when this caller was made a leader
        if not slot.finished:
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # finished without error: run gave a result

    def _start_leaders(self) -> None:
        """Make leaders of the oldest waiting requests whose keys no running batch holds, while fewer than
        `leaders` batches run; their keys are held from now on. Called with the lock held."""
        for s in self._queue:
            if self._running >= self._leaders:
                return
            if not s.lead and self._active.isdisjoint(s.keys):
                s.lead = True
                self._running += 1
                self._active |= s.keys
                s.done.set()

    def _lead(self, mine: _Slot[T, R]) -> None:
        """Run one batch that starts with this caller's own request (a request made a leader stays in the queue
        until its own leader takes it), then let the next leaders start."""
        batch = [mine]
        try:
            # give up the interpreter lock before taking the batch, again while that brought new requests (a few
            # times at most): the callers the previous batch has just answered can then hand in their next
            # requests and join this batch (zero sleeps: no delay when nobody else is running; the queue's length
            # is read without the lock, as a hint only)
            waiting = len(self._queue)
            for _turn in range(_YIELDS):
                time.sleep(0)
                if len(self._queue) == waiting:
                    break
                waiting = len(self._queue)
            with self._lock:
                batch = self._take(mine)
            try:
                outcomes = list(self._run([s.item for s in batch]))
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"a batch of {len(batch)} requests gave {len(outcomes)} outcomes")
            except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
                outcomes = [exc] * len(batch)
            for s, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    s.error = outcome
                else:
                    s.result = outcome
                s.finished = True
                if s is not mine:
                    s.done.set()
        finally:
            with self._lock:
                self.batches += 1
                self.combined += len(batch)
                for s in batch:
                    self._active -= s.keys
                self._running -= 1
                self._start_leaders()

    def _take(self, mine: _Slot[T, R]) -> list[_Slot[T, R]]:
        """The batch of a leader: its own request, then, in arrival order, each waiting request that is not another
        leader's own and whose keys no running batch and no request taken so far holds, up to the limit. Called
        with the lock held; the keys taken are held until the batch is done."""
        batch = [mine]
        rest: list[_Slot[T, R]] = []
        for s in self._queue:
            if s is mine:
                continue
            if len(batch) < self._limit and not s.lead and self._active.isdisjoint(s.keys):
                batch.append(s)
                self._active |= s.keys
            else:
                rest.append(s)
        self._queue = rest
        return batch
