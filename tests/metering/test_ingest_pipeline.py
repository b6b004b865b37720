"""The pieces that let the CSV ingest overlap reading and storing: the read-ahead (order, errors, at most one item
ahead) and the binary COPY of readings on arrays (the same stored values as the text form)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection

from lowcarbon.metering.domain import vector as vec
from lowcarbon.metering.domain.readahead import ReadAhead

# ---- read ahead ---------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_read_ahead_gives_every_item_in_order_early_or_not():
    reads = ReadAhead(iter(range(100)))
    got = []
    for item in reads:
        got.append(item)
        if item % 3 == 0:
            reads.read_next()
            reads.read_next()  # reads one item ahead, not more
    assert got == list(range(100))


@pytest.mark.unit
def test_read_ahead_holds_at_most_one_item_ahead():
    made: list[int] = []

    def source() -> Iterator[int]:
        for i in range(10):
            made.append(i)
            yield i

    reads = ReadAhead(source())
    for item in reads:
        reads.read_next()
        reads.read_next()
        assert len(made) <= item + 2


@pytest.mark.unit
def test_read_ahead_raises_the_sources_error_when_its_item_is_asked_for():
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad row")

    reads = ReadAhead(source())
    done: list[int] = []
    with pytest.raises(ValueError, match="bad row"):
        for item in reads:
            reads.read_next()  # fails for item 2's successor: kept until item 2 is done
            done.append(item)
    assert done == [1, 2]
    assert list(reads) == []  # finished


@pytest.mark.unit
def test_read_ahead_passes_interrupts_at_once():
    def source() -> Iterator[int]:
        yield 1
        raise KeyboardInterrupt

    reads = ReadAhead(source())
    with pytest.raises(KeyboardInterrupt):
        for _item in reads:
            reads.read_next()


# ---- binary COPY of readings --------------------------------------------------------------------------------------


def _numeric(buf: bytes, at: int) -> tuple[Decimal, int]:
    ndigits, weight, sign, dscale = struct.unpack_from("!hhHH", buf, at)
    digits = struct.unpack_from(f"!{ndigits}h", buf, at + 8)
    value = sum(Decimal(d) * Decimal(10000) ** (weight - i) for i, d in enumerate(digits))
    assert sign == 0 and dscale == 4
    return value.quantize(Decimal("0.0001")), at + 8 + 2 * ndigits


def _rows(buf: bytes) -> list[tuple[object, ...]]:
    """Read a binary COPY stream back (the format as PostgreSQL documents it)."""
    assert buf.startswith(vec.PG_COPY_HEADER) and buf.endswith(vec.PG_COPY_TRAILER)
    at = len(vec.PG_COPY_HEADER)
    out = []
    while at < len(buf) - 2:
        (nfields,) = struct.unpack_from("!h", buf, at)
        at += 2
        row: list[object] = []
        for k in range(nfields):
            (size,) = struct.unpack_from("!i", buf, at)
            at += 4
            if size == -1:
                row.append(None)
            elif k in (3, 5):
                value, end = _numeric(buf, at)
                assert end == at + size
                row.append(value)
            else:
                row.append(int.from_bytes(buf[at : at + size], "big", signed=True))
            at += max(size, 0)
        out.append(tuple(row))
    return out


def _sample(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    energy = rng.integers(0, vec.UNIT_LIMIT, n)
    energy[:4] = [0, 1, 9_999, vec.UNIT_LIMIT - 1][: min(4, n)]
    return {
        "meter_id": rng.integers(1, 10**12, n),
        "ts_us": rng.integers(-(10**15), 10**17, n) // vec.US * vec.US,
        "interval_s": rng.integers(0, 10**6, n),
        "energy": energy,
        "export": rng.integers(0, 10**8, n),
        "has_export": rng.random(n) < 0.5,
    }


@pytest.mark.unit
@pytest.mark.parametrize("exports", ["none", "all", "some"])
def test_binary_copy_holds_the_values_in_order(exports):
    s = _sample(300, 7)
    s["has_export"] = {"none": np.zeros(300, bool), "all": np.ones(300, bool), "some": s["has_export"]}[
        exports
    ]
    rows = _rows(vec.copy_binary_readings(**s, batch_id=42))
    text = vec.format_units(s["energy"])
    export_text = vec.format_units(s["export"])
    assert len(rows) == 300
    for i, row in enumerate(rows):
        assert row == (
            int(s["meter_id"][i]),
            int(s["ts_us"][i]) - vec.PG_EPOCH_US,
            int(s["interval_s"][i]),
            Decimal(text[i]),
            None,
            Decimal(export_text[i]) if s["has_export"][i] else None,
            None,
            42,
        )


@pytest.mark.django_db
@pytest.mark.postgres
def test_binary_copy_stores_what_the_text_form_stores():
    s = _sample(500, 11)
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE t_copy (meter_id bigint, ts timestamptz, interval_s integer, energy numeric(16,4), "
            "cumulative numeric(16,4), export numeric(16,4), export_cumulative numeric(16,4), batch_id bigint)"
        )
        with cur.cursor.copy("COPY t_copy FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(vec.copy_binary_readings(**s, batch_id=9))
        cur.execute(
            "SELECT meter_id, ts, interval_s, energy::text, cumulative, export::text, batch_id FROM t_copy"
        )
        got = cur.fetchall()
    energy, export = vec.format_units(s["energy"]), vec.format_units(s["export"])
    assert got == [
        (
            int(s["meter_id"][i]),
            datetime(1970, 1, 1, tzinfo=UTC) + np.timedelta64(int(s["ts_us"][i]), "us").item(),
            int(s["interval_s"][i]),
            energy[i],  # the text form as `str(q_kwh(value))` writes it: four places kept
            None,
            export[i] if s["has_export"][i] else None,
            9,
        )
        for i in range(500)
    ]
