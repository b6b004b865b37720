"""Combining concurrent requests into batches (core/domain/combining.py): each caller gets its own result or its
own exception, requests that arrive while a batch runs form the next batch, requests that touch the same key never
share one, a failing batch leaves the combiner working."""

from __future__ import annotations

import threading

import pytest

from lowcarbon.core.domain.combining import Combiner

pytestmark = pytest.mark.unit


class Refused(Exception):
    pass


class Recorder:
    """A batch runner that records its batches, can hold the first batch until told, and refuses negative items."""

    def __init__(self, hold_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, items):
        self.batches.append(list(items))
        self.started.set()
        self.release.wait(10)
        return [Refused(f"no {i}") if i < 0 else i * 10 for i in items]


def _submit_all(c: Combiner, items: list[int]) -> tuple[dict[int, object], list[threading.Thread]]:
    out: dict[int, object] = {}

    def one(i: int) -> None:
        try:
            out[i] = c.submit(i)
        except Refused as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in items]
    for t in threads:
        t.start()
    return out, threads


def _queued(c: Combiner, n: int) -> None:
    for _ in range(1000):
        with c._lock:
            if len(c._queue) >= n:
                return
        threading.Event().wait(0.005)
    raise AssertionError(f"{n} requests never queued")


def test_a_request_alone_runs_at_once_and_alone():
    run = Recorder()
    c = Combiner(run)
    assert c.submit(4) == 40
    assert c.submit(5) == 50
    assert run.batches == [[4], [5]]


def test_requests_arriving_during_a_batch_form_the_next_batch_and_each_gets_its_own_outcome():
    run = Recorder(hold_first=True)
    c = Combiner(run)
    first, t0 = _submit_all(c, [1])
    assert run.started.wait(5)
    rest, threads = _submit_all(c, [2, -3, 4, 5])
    _queued(c, 4)
    run.release.set()
    for t in t0 + threads:
        t.join(10)
    assert first == {1: 10}
    assert run.batches[0] == [1]
    assert sorted(run.batches[1]) == [-3, 2, 4, 5] and len(run.batches) == 2
    assert {k: v for k, v in rest.items() if k != -3} == {2: 20, 4: 40, 5: 50}
    assert isinstance(rest[-3], Refused) and str(rest[-3]) == "no -3"
    assert (c.batches, c.combined) == (2, 5)


def test_requests_with_a_key_in_common_never_share_a_batch_and_keep_their_order():
    run = Recorder(hold_first=True)
    c = Combiner(run, conflicts=lambda i: {abs(i) % 3})
    _first, t0 = _submit_all(c, [100])
    assert run.started.wait(5)
    threads = []
    for i in (1, 2, 4, 7, 5):  # 1, 4 and 7 share key 1; 2 and 5 share key 2
        _out, ts = _submit_all(c, [i])
        threads += ts
        _queued(c, len(threads))
    run.release.set()
    for t in t0 + threads:
        t.join(10)
    assert run.batches == [[100], [1, 2], [4, 5], [7]]


def test_the_limit_caps_a_batch():
    run = Recorder(hold_first=True)
    c = Combiner(run, limit=2)
    _first, t0 = _submit_all(c, [9])
    assert run.started.wait(5)
    out, threads = [], []
    for i in range(1, 6):
        o, ts = _submit_all(c, [i])
        out.append(o)
        threads += ts
        _queued(c, i)
    run.release.set()
    for t in t0 + threads:
        t.join(10)
    assert [len(b) for b in run.batches] == [1, 2, 2, 1]
    assert [o[i] for i, o in enumerate(out, 1)] == [10, 20, 30, 40, 50]


def test_a_batch_runner_that_fails_fails_its_batch_only():
    calls = []

    def run(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise Refused("database gone")
        return list(items)

    c = Combiner(run)
    with pytest.raises(Refused, match="database gone"):
        c.submit(1)
    assert c.submit(2) == 2  # the lead was given up: the next request is served


def test_a_runner_that_answers_the_wrong_number_of_outcomes_is_an_error_for_the_batch():
    c = Combiner(lambda items: [])
    with pytest.raises(RuntimeError, match="gave 0 outcomes"):
        c.submit(1)


def test_with_two_leaders_a_request_runs_while_another_batch_waits():
    held = threading.Event()
    release = threading.Event()
    batches: list[list[int]] = []

    def run(items):
        batches.append(list(items))
        if items[0] == 1:
            held.set()
            release.wait(10)
        return [i * 10 for i in items]

    c = Combiner(run, leaders=2)
    first, t0 = _submit_all(c, [1])
    assert held.wait(5)
    assert c.submit(2) == 20  # the second leader did not wait for the first batch
    release.set()
    for t in t0:
        t.join(10)
    assert first == {1: 10} and batches == [[1], [2]]


@pytest.mark.parametrize("leaders", [1, 3])
def test_many_threads_get_exactly_their_own_results(leaders):
    c = Combiner(lambda items: [i * 2 for i in items], conflicts=lambda i: {i % 5}, leaders=leaders)
    results: dict[int, int] = {}
    lock = threading.Lock()

    def work(k: int) -> None:
        for j in range(200):
            v = k * 1000 + j
            r = c.submit(v)
            with lock:
                results[v] = r

    threads = [threading.Thread(target=work, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 16 * 200 and all(r == v * 2 for v, r in results.items())
    assert c.combined == 16 * 200
