"""The one ingest service behind every door (file upload, JSON API, CLI, MQTT): validate in the domain module,
store accepted readings, quarantine rejected rows with their reason, maintain daily and monthly rollups, flag gaps.

Rows are processed in chunks so memory stays bounded whatever the file size. Each chunk is one transaction; on
PostgreSQL it takes an advisory lock per meter so that two deliveries for the same meter never interleave, and on
SQLite the write transaction is IMMEDIATE, which serialises writers. Re-sending a row that is stored already is an
identical duplicate and changes nothing.

A CSV file is read in chunks of cells and checked on arrays (`domain.vector`): rows in the common form — an
interval reading of a known meter, once per (meter, time) — are validated, stored and rolled up without Python work
per row; every other row (unreadable on arrays, flagged by an array check, a register reading, a duplicate, an
unknown meter) is validated row by row by `domain.validate`, so the outcome is the same as row by row. On
PostgreSQL the accepted rows go in by one binary COPY per chunk, and while the server writes them the next chunk of
the file is read and parsed (`domain.readahead`), so client and server work at the same time; the checks against
stored readings stay in each chunk's transaction, after the previous chunk is committed.

On PostgreSQL readings and daily rollups are range-partitioned (by UTC month, by year): a chunk creates the
partitions its accepted rows need just before writing them, having taken the partition-creation lock at its start
if it might need one (`metering.partitions` explains the locking).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import islice, repeat
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from lowcarbon.core.domain.text import storable
from lowcarbon.core.domain.units import ENERGY_UNITS, HEAT_UNITS, VOLUME_UNITS
from lowcarbon.core.params import MissingParameter, param_value
from lowcarbon.metering import partitions
from lowcarbon.metering.domain import vector as vec
from lowcarbon.metering.domain.partitions import local_years_of_us, months_of_us
from lowcarbon.metering.domain.readahead import ReadAhead
from lowcarbon.metering.domain.validate import (
    Candidate,
    MeterSpec,
    MeterState,
    Outcome,
    ParsedRow,
    RawRow,
    Rejection,
    Stored,
    parse_row,
    validate_rows,
)
from lowcarbon.metering.models import DataFlag, IngestBatch, Meter, Quantity, QuarantinedRow, Reading
from lowcarbon.metering.parsers import CsvRows, FileFormatError

log = logging.getLogger(__name__)
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

UNIT_FACTORS: dict[str, dict[str, Decimal]] = {
    Quantity.ELECTRICITY: ENERGY_UNITS,
    Quantity.COOLING: HEAT_UNITS,
    Quantity.HEAT: HEAT_UNITS,
    Quantity.WATER: VOLUME_UNITS,
    Quantity.GAS: VOLUME_UNITS,
}


# ---- plug-in points for subject kinds (PV systems, buildings ...) -------------------------------------------------


@dataclass(frozen=True)
class SubjectProvider:
    """How a kind of subject (e.g. "pv_system") adds rules to its meters and says who may send readings for them.

    `specs(meters)` returns, per meter id, keyword overrides for MeterSpec (rules, installed_at, supports_export);
    `managed(user, meters)` returns the ids of the meters this user may send readings for."""

    specs: Callable[[list[Meter]], dict[int, dict[str, Any]]]
    managed: Callable[[Any, list[Meter]], set[int]]


_PROVIDERS: dict[str, SubjectProvider] = {}
#: called after an ingest with {meter_id: {months touched}}; used to refresh plausibility and quantification
_HOOKS: list[Callable[[dict[int, set[date]]], None]] = []


def register_subject_provider(kind: str, provider: SubjectProvider) -> None:
    _PROVIDERS[kind] = provider


def register_ingest_hook(hook: Callable[[dict[int, set[date]]], None]) -> None:
    if hook not in _HOOKS:
        _HOOKS.append(hook)


# ---- the ingest -----------------------------------------------------------------------------------------------


@dataclass
class _Context:
    user: Any
    now: datetime
    future_tolerance: timedelta
    specs: dict[str, MeterSpec | None] = field(default_factory=dict)
    touched: dict[int, set[date]] = field(default_factory=lambda: defaultdict(set))
    by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    #: reads the next chunk of a file ahead, at a moment the ingest would wait for the server (or None)
    read_ahead: Callable[[], None] | None = None


#: rows per chunk (one transaction) when neither the caller nor LOWCARBON_INGEST_CHUNK says: on PostgreSQL a chunk
#: pays fixed costs (commit, locks, look-ups, rollup upserts) that larger chunks spread; memory stays bounded by the
#: chunk (two chunks of a file are alive at once: the one being stored and the one read ahead)
DEFAULT_CHUNK = {"postgresql": 20_000, "sqlite": 5_000}


def _chunks(rows: Iterable[RawRow], size: int) -> Iterator[list[RawRow]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _future_tolerance() -> timedelta:
    try:
        return timedelta(minutes=float(param_value("metering.future_tolerance_minutes")))
    except MissingParameter:
        return timedelta(minutes=5)


def do_ingest(
    rows: Iterable[RawRow],
    *,
    source: str,
    filename: str = "",
    user: Any = None,
    client_key: str = "",
    now: datetime | None = None,
    chunk_size: int | None = None,
    run_hooks: bool = True,
) -> IngestBatch:
    """Ingest rows from any door. `user` None means a trusted system door (CLI, MQTT gateway): every meter is
    allowed; a person may only send readings for meters of subjects they manage. Returns the finished batch.
    A repeated `client_key` of the same person returns the earlier batch and changes nothing."""
    client_key = client_key[:100]
    if client_key:
        earlier = IngestBatch.objects.filter(submitted_by=user, client_key=client_key).first()
        if earlier is not None:
            return earlier
    batch = IngestBatch.objects.create(
        source=source, filename=filename[:255], submitted_by=user, client_key=client_key
    )
    ctx = _Context(user=user, now=now or timezone.now(), future_tolerance=_future_tolerance())
    size = chunk_size or settings.LOWCARBON_INGEST_CHUNK or DEFAULT_CHUNK.get(connection.vendor, 5000)
    try:
        if isinstance(rows, CsvRows):
            # the next chunk is read and parsed while the server stores this one (`_store_fast`)
            reads = ReadAhead(_read_chunk(cells) for cells in rows.cell_chunks(size))
            ctx.read_ahead = reads.read_next
            for read in reads:
                _ingest_cells(batch, read, ctx)
        else:
            for chunk in _chunks(rows, size):
                _ingest_chunk(batch, chunk, ctx)
        batch.status = IngestBatch.Status.DONE
    except FileFormatError as exc:
        batch.status = IngestBatch.Status.FAILED
        batch.error = str(exc)
    finally:
        batch.rows_total = ctx.total
        batch.rows_accepted = ctx.accepted
        batch.rows_duplicate = ctx.duplicates
        batch.rows_rejected = ctx.rejected
        batch.rejected_by_reason = dict(sorted(ctx.by_reason.items()))
        batch.finished_at = timezone.now()
        if batch.status == IngestBatch.Status.RUNNING:
            batch.status = IngestBatch.Status.FAILED
        batch.save()
    if run_hooks and ctx.touched:
        run_ingest_hooks(dict(ctx.touched), batch)
    return batch


def run_ingest_hooks(touched: dict[int, set[date]], batch: IngestBatch | None = None) -> None:
    for hook in _HOOKS:
        try:
            hook(touched)
        except Exception as exc:  # readings are stored; a failing refresh must not lose them
            log.exception("ingest hook %s failed", hook)
            if batch is not None:
                batch.error = (batch.error + f"\n{hook.__module__}: {exc}").strip()
                batch.save(update_fields=["error"])


def _load_specs(serials: set[str], ctx: _Context) -> None:
    meters = list(Meter.objects.filter(serial__in=serials))
    by_kind: dict[str, list[Meter]] = defaultdict(list)
    for m in meters:
        by_kind[m.subject_kind].append(m)
    for serial in serials:
        ctx.specs[serial] = None
    admin = ctx.user is None or getattr(ctx.user, "is_registry_admin", False)
    for kind, group in by_kind.items():
        provider = _PROVIDERS.get(kind)
        extra = provider.specs(group) if provider else {}
        allowed = (
            {m.id for m in group} if admin else (provider.managed(ctx.user, group) if provider else set())
        )
        for m in group:
            if m.id not in allowed:
                continue
            kwargs: dict[str, Any] = {
                "installed_at": m.installed_at,
                "removed_at": m.removed_at,
                "initial_register": m.initial_register,
                "register_wrap": m.register_wrap,
                "supports_export": False,
            }
            kwargs.update(extra.get(m.id, {}))
            ctx.specs[m.serial] = MeterSpec(
                meter_id=m.id,
                serial=m.serial,
                unit_factors=UNIT_FACTORS.get(m.quantity, ENERGY_UNITS),
                default_interval_s=m.interval_minutes * 60,
                **kwargs,
            )


def _lock_meters(meter_ids: list[int]) -> None:
    if connection.vendor == "postgresql" and meter_ids:
        with connection.cursor() as cur:
            # one advisory lock per meter, taken in id order so two deliveries never deadlock
            cur.execute(
                "SELECT pg_advisory_xact_lock(%s, id::int) FROM unnest(%s::bigint[]) AS t(id) ORDER BY id",
                [0x1C0DE, sorted(meter_ids)],
            )


def _prepare_partitions(ts_us: vec.I64, latest_us: int) -> None:
    """At the start of a chunk's transaction, before it reads the partitioned tables (PostgreSQL): if a row of the
    chunk may need a reading or daily-rollup partition that is not known to exist, take the partition-creation lock
    now, so that creating it later in the chunk never waits in a cycle with another chunk (metering.partitions).
    `ts_us`: the times of the chunk's rows of known meters; rows after `latest_us` are rejected as future anyway.
    The exact partitions are created just before the rows are written (`_store`, `_update_rollups`)."""
    if connection.vendor != "postgresql" or not len(ts_us):
        return
    ts_us = ts_us[ts_us <= latest_us]
    if partitions.missing(months_of_us(ts_us)) or partitions.missing(
        local_years_of_us(ts_us, LOCAL_OFFSET, timedelta(days=1)), partitions.DAILY_ROLLUPS
    ):
        partitions.lock_for_creation()


def _load_states(meter_ids: set[int]) -> dict[int, MeterState]:
    states: dict[int, MeterState] = {}
    for mid in meter_ids:
        last = (
            Reading.objects.filter(meter_id=mid, cumulative__isnull=False)
            .order_by("-ts")
            .values_list("ts", "cumulative", "export_cumulative")
            .first()
        )
        states[mid] = MeterState(*last) if last else MeterState()
    return states


def _load_stored(by_meter: dict[int, list[datetime]]) -> dict[tuple[int, datetime], Stored]:
    stored: dict[tuple[int, datetime], Stored] = {}
    for mid, stamps in by_meter.items():
        qs = Reading.objects.filter(meter_id=mid, ts__gte=min(stamps), ts__lte=max(stamps)).values_list(
            "ts", "energy", "cumulative", "export", "interval_s"
        )
        wanted = set(stamps)
        for ts, energy, cumulative, export, interval_s in qs.iterator(chunk_size=10000):
            if ts in wanted:
                stored[(mid, ts)] = Stored(energy, cumulative, export, interval_s)
    return stored


def _ingest_chunk(batch: IngestBatch, chunk: list[RawRow], ctx: _Context) -> None:
    parsed = [parse_row(r) for r in chunk]
    ctx.total += len(chunk)
    new_serials = {p.serial for p in parsed if not isinstance(p, Rejection) and p.serial not in ctx.specs}
    if new_serials:
        _load_specs(new_serials, ctx)
    by_meter: dict[int, list[datetime]] = defaultdict(list)
    cumulative_meters: set[int] = set()
    for p in parsed:
        if isinstance(p, Rejection):
            continue
        spec = ctx.specs.get(p.serial)
        if spec is not None:
            by_meter[spec.meter_id].append(p.ts)
            if p.cumulative is not None:
                cumulative_meters.add(spec.meter_id)
    specs = {s: v for s, v in ctx.specs.items() if v is not None}
    with transaction.atomic():
        _lock_meters(list(by_meter))
        _prepare_partitions(
            np.array([vec.to_us(t) for stamps in by_meter.values() for t in stamps], dtype=np.int64),
            vec.to_us(ctx.now + ctx.future_tolerance),
        )
        states = _load_states(cumulative_meters)
        stored = _load_stored(by_meter) if by_meter else {}
        outcome = validate_rows(parsed, specs, states, stored, ctx.now, ctx.future_tolerance)
        _store(batch, outcome, ctx)


@dataclass
class _Fast:
    """Readings accepted by the array checks (one entry each; canonical unit, 0.0001 units, µs since the epoch)."""

    meter_id: vec.I64
    ts_us: vec.I64
    interval_s: vec.I64
    energy: vec.I64
    export: vec.I64
    has_export: vec.Mask

    #: work to do while the server stores these readings (reading the next chunk of the file)
    meanwhile: Callable[[], None] | None = field(default=None, repr=False)
    _daily: dict[tuple[int, date], list[Any]] | None = field(default=None, repr=False)

    def daily(self) -> dict[tuple[int, date], list[Any]]:
        """The daily rollup of these readings: (meter, local day) → [energy, export, n, covered_s, max_energy]
        (computed once; on PostgreSQL while the server takes the readings in)."""
        if self._daily is None:
            g = vec.day_groups(self.meter_id, self.ts_us, self.interval_s, self.energy, self.export)
            dec4 = vec.units_decimal
            self._daily = {
                (mid, vec.day_of(dn)): [dec4(energy), dec4(export), n, covered, dec4(top)]
                for mid, dn, energy, export, n, covered, top in zip(
                    g.meter_id.tolist(),
                    g.day.tolist(),
                    g.energy.tolist(),
                    g.export.tolist(),
                    g.n.tolist(),
                    g.covered_s.tolist(),
                    g.max_energy.tolist(),
                    strict=True,
                )
            }
        return self._daily


def _load_stored_between(ranges: dict[int, tuple[datetime, datetime]]) -> dict[tuple[int, datetime], Stored]:
    """Stored readings of each meter between two times (inclusive); one statement on PostgreSQL."""
    stored: dict[tuple[int, datetime], Stored] = {}
    if connection.vendor == "postgresql":
        mids = list(ranges)
        los = [lo for lo, _ in ranges.values()]
        his = [hi for _, hi in ranges.values()]
        with connection.cursor() as cur:
            # the outer bounds let the planner skip the partitions of other months
            cur.execute(
                f"SELECT r.meter_id, r.ts, r.energy, r.cumulative, r.export, r.interval_s "  # noqa: S608
                f"FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS q(meter_id, lo, hi) "
                f"JOIN {Reading._meta.db_table} r ON r.meter_id = q.meter_id AND r.ts >= q.lo AND r.ts <= q.hi "
                f"WHERE r.ts >= %s AND r.ts <= %s",
                [mids, los, his, min(los), max(his)],
            )
            for mid, ts, energy, cumulative, export, interval_s in cur.fetchall():
                stored[(mid, ts)] = Stored(energy, cumulative, export, interval_s)
        return stored
    for mid, (lo, hi) in ranges.items():
        qs = Reading.objects.filter(meter_id=mid, ts__gte=lo, ts__lte=hi).values_list(
            "ts", "energy", "cumulative", "export", "interval_s"
        )
        for ts, energy, cumulative, export, interval_s in qs.iterator(chunk_size=10000):
            stored[(mid, ts)] = Stored(energy, cumulative, export, interval_s)
    return stored


@dataclass
class _ReadChunk:
    """A chunk of a CSV file as read: its cells, their columns as arrays, and the rows not readable on arrays as
    `parse_row` reads them (by index in the chunk). Pure work, no database: done ahead (see `domain.readahead`)."""

    chunk: vec.CellChunk
    cols: vec.CellColumns
    parsed: dict[int, ParsedRow | Rejection]


def _read_chunk(chunk: vec.CellChunk) -> _ReadChunk:
    cols = vec.read_cells(chunk)
    parsed = {i: parse_row(chunk.raw_row(i)) for i in np.flatnonzero(~cols.ok).tolist()}
    return _ReadChunk(chunk, cols, parsed)


def _ingest_cells(batch: IngestBatch, read: _ReadChunk, ctx: _Context) -> None:
    """One chunk of a CSV file: the common rows on arrays, the others row by row (see the module docstring)."""
    chunk, cols, parsed = read.chunk, read.cols, read.parsed
    n = len(chunk.rows)
    ctx.total += n
    serial_used = np.zeros(len(cols.serials), dtype=np.bool_)
    serial_used[cols.serial_code[cols.ok]] = True
    new_serials = {cols.serials[k] for k in np.flatnonzero(serial_used).tolist()}
    new_serials |= {p.serial for p in parsed.values() if isinstance(p, ParsedRow)}
    new_serials -= ctx.specs.keys()
    if new_serials:
        _load_specs(new_serials, ctx)
    specs = {s: v for s, v in ctx.specs.items() if v is not None}

    # meter and time of every row that parses (-1: unknown meter or not parsed), register readings
    code_mid = np.array(
        [spec.meter_id if (spec := specs.get(s)) is not None else -1 for s in cols.serials], dtype=np.int64
    )
    row_mid = np.where(cols.ok, code_mid[cols.serial_code] if len(code_mid) else -1, -1).astype(np.int64)
    row_ts = cols.ts_us.copy()
    register = np.zeros(n, dtype=np.bool_)
    for i, p in parsed.items():
        if isinstance(p, ParsedRow) and (spec := specs.get(p.serial)) is not None:
            row_mid[i] = spec.meter_id
            row_ts[i] = vec.to_us(p.ts)
            register[i] = p.cumulative is not None
    known = row_mid >= 0
    # row by row: not readable on arrays, unknown meters, every row of a meter with register readings (their
    # deltas chain through the rows) and every row of a (meter, time) sent twice (the first decides the others)
    slow = ~cols.ok | ~known
    register_meters = np.unique(row_mid[register])
    slow |= known & np.isin(row_mid, register_meters)
    known_idx = np.flatnonzero(known)
    slow[known_idx[vec.duplicated(row_mid[known_idx], row_ts[known_idx])]] = True

    order = np.lexsort((row_ts[known_idx], row_mid[known_idx]))
    km, kt = row_mid[known_idx][order], row_ts[known_idx][order]
    ranges: dict[int, tuple[datetime, datetime]] = {}
    if len(km):
        firsts = np.flatnonzero(np.concatenate(([True], km[1:] != km[:-1])))
        lasts = np.append(firsts[1:], len(km)) - 1
        for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
            lo, hi = (vec.EPOCH + timedelta(microseconds=int(kt[k])) for k in (a, b))
            ranges[int(km[a])] = (lo, hi)
    fast_rows: _Fast | None = None
    with transaction.atomic():
        _lock_meters(list(ranges))
        _prepare_partitions(row_ts[known], vec.to_us(ctx.now + ctx.future_tolerance))
        states = _load_states(set(register_meters.tolist()))
        stored = _load_stored_between(ranges) if ranges else {}
        if stored:
            at: dict[int, list[int]] = defaultdict(list)
            for mid, ts in stored:
                at[mid].append(vec.to_us(ts))
            for mid, stamps in at.items():
                slow |= (row_mid == mid) & np.isin(row_ts, np.array(stamps, dtype=np.int64))
        idx = np.flatnonzero(~slow)
        if len(idx):
            checked = _check_fast(idx, cols, row_mid, specs, ctx)
            slow[idx[checked.flagged]] = True
            good = ~checked.flagged
            idx = idx[good]
            fast_rows = _Fast(
                row_mid[idx],
                row_ts[idx],
                checked.interval_s[good],
                checked.energy[good],
                checked.export[good],
                cols.has_export[idx],
                meanwhile=ctx.read_ahead,
            )
        slow_rows = [
            p if (p := parsed.get(i)) is not None else parse_row(chunk.raw_row(i))
            for i in np.flatnonzero(slow).tolist()
        ]
        outcome = validate_rows(slow_rows, specs, states, stored, ctx.now, ctx.future_tolerance)
        _store(batch, outcome, ctx, fast_rows)


def _check_fast(
    idx: vec.I64, cols: vec.CellColumns, row_mid: vec.I64, specs: dict[str, MeterSpec], ctx: _Context
) -> vec.Checked:
    """The array checks for the rows idx (readable, known meter, distinct and new (meter, time))."""
    by_id = {s.meter_id: s for s in specs.values()}
    mids = row_mid[idx]
    meter_ids, pos = np.unique(mids, return_inverse=True)
    pos = pos.reshape(-1).astype(np.int64)
    table = vec.meter_table([by_id[m] for m in meter_ids.tolist()])
    n_units = max(1, len(cols.units))
    pair = pos * n_units + cols.unit_code[idx]
    pairs, which = np.unique(pair, return_inverse=True)
    exps = []
    for k in pairs.tolist():
        e = vec.unit_exponent(table.specs[k // n_units].unit_factors.get(cols.units[k % n_units]))
        exps.append(vec.NO_EXPONENT if e is None else e)
    exponent = np.array(exps, dtype=np.int64)[which.reshape(-1)]
    latest_us = vec.to_us(ctx.now + ctx.future_tolerance)
    return vec.check_interval_rows(
        table,
        pos,
        exponent,
        cols.ts_us[idx],
        cols.minutes[idx],
        cols.energy[idx],
        cols.export[idx],
        cols.has_export[idx],
        latest_us,
    )


def _store_fast(batch: IngestBatch, fast: _Fast) -> None:
    """Store readings accepted on arrays in one bulk statement (binary COPY on PostgreSQL)."""
    table = Reading._meta.db_table
    columns = "(meter_id, ts, interval_s, energy, cumulative, export, export_cumulative, batch_id)"
    if connection.vendor == "postgresql":
        partitions.ensure_partitions(months_of_us(fast.ts_us))
        data = vec.copy_binary_readings(
            fast.meter_id, fast.ts_us, fast.interval_s, fast.energy, fast.export, fast.has_export, batch.pk
        )
        with (
            connection.cursor() as cur,
            cur.cursor.copy(f"COPY {table} {columns} FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(data)
            # while the server writes the rows: their daily rollup, the next chunk of the file
            fast.daily()
            if fast.meanwhile is not None:
                fast.meanwhile()
        return
    energy = vec.format_units(fast.energy)
    if fast.has_export.any():
        text = np.array(vec.format_units(fast.export), dtype=object)
        text[~fast.has_export] = None
        export: list[str | None] = text.tolist()
    else:
        export = [None] * len(energy)
    sql = f"INSERT INTO {table} {columns} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
    params = list(
        zip(
            fast.meter_id.tolist(),
            vec.format_ts(fast.ts_us),
            fast.interval_s.tolist(),
            energy,
            repeat(None),
            export,
            repeat(None),
            repeat(batch.pk),
        )
    )
    with connection.cursor() as cur:
        cur.executemany(sql, params)


def _adapters() -> tuple[Callable[[datetime], Any], Callable[[Decimal | None], Any], Callable[[date], Any]]:
    """Fast parameter adapters for the executemany hot path, equal to what the ORM would write."""
    if connection.vendor == "sqlite":
        # the ORM stores aware datetimes as naive UTC text and decimals as text (see Django's sqlite3 backend)
        def ts_a(ts: datetime) -> Any:
            return ts.replace(tzinfo=None).isoformat(" ")

        def dec_a(v: Decimal | None) -> Any:
            return None if v is None else str(v)

        def day_a(d: date) -> Any:
            return d.isoformat()

        return ts_a, dec_a, day_a

    def same(v: Any) -> Any:
        return v

    return same, same, same


def _store(batch: IngestBatch, outcome: Outcome, ctx: _Context, fast: _Fast | None = None) -> None:
    if fast is not None and len(fast.meter_id):
        _store_fast(batch, fast)
        ctx.accepted += len(fast.meter_id)
    fast_daily = None if fast is None or not len(fast.meter_id) else fast.daily()
    if outcome.accepted:
        columns = "(meter_id, ts, interval_s, energy, cumulative, export, export_cumulative, batch_id)"
        table = Reading._meta.db_table
        bid = batch.pk
        if connection.vendor == "postgresql":
            partitions.ensure_partitions(c.ts for c in outcome.accepted)
            # COPY: the rows were checked against the stored ones under the meters' advisory locks, so none conflict
            with connection.cursor() as cur, cur.cursor.copy(f"COPY {table} {columns} FROM STDIN") as copy:
                for c in outcome.accepted:
                    copy.write_row(
                        (
                            c.meter_id,
                            c.ts,
                            c.interval_s,
                            c.energy,
                            c.cumulative,
                            c.export,
                            c.export_cumulative,
                            bid,
                        )
                    )
        else:
            ts_a, dec_a, _day_a = _adapters()
            sql = f"INSERT INTO {table} {columns} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
            params = [
                (
                    c.meter_id,
                    ts_a(c.ts),
                    c.interval_s,
                    dec_a(c.energy),
                    dec_a(c.cumulative),
                    dec_a(c.export),
                    dec_a(c.export_cumulative),
                    bid,
                )
                for c in outcome.accepted
            ]
            with connection.cursor() as cur:
                cur.executemany(sql, params)
    if outcome.accepted or fast_daily is not None:
        _update_rollups(outcome.accepted, ctx, fast_daily)
    if outcome.rejections:
        QuarantinedRow.objects.bulk_create(
            [
                QuarantinedRow(
                    batch=batch,
                    row_number=r.row_number,
                    reason=r.reason,
                    field=storable(r.field)[:40],
                    detail=storable(r.detail)[:300],
                    meter_serial=storable(r.serial)[:64],
                    raw=storable(r.raw),
                )
                for r in outcome.rejections
            ],
            batch_size=1000,
        )
        for r in outcome.rejections:
            ctx.by_reason[r.reason] += 1
    ctx.accepted += len(outcome.accepted)
    ctx.duplicates += outcome.duplicates
    ctx.rejected += len(outcome.rejections)


#: Asia/Shanghai has kept UTC+8 without daylight saving since 1991, so local days are a fixed offset away.
LOCAL_OFFSET = timedelta(hours=8)


def local_day(c: Candidate) -> date:
    """Local (Asia/Shanghai) day of the interval's start: a reading ending at 00:00 belongs to the day before."""
    return (c.ts - timedelta(seconds=c.interval_s) + LOCAL_OFFSET).date()


def _update_rollups(
    accepted: list[Candidate], ctx: _Context, fast_daily: dict[tuple[int, date], list[Any]] | None = None
) -> None:
    daily: dict[tuple[int, date], list[Any]] = {} if fast_daily is None else fast_daily
    monthly: dict[tuple[int, date], list[Any]] = {}
    zero = Decimal(0)
    offset = LOCAL_OFFSET
    for c in accepted:
        if c.interval_s == 0:
            continue  # a baseline register read carries no energy
        day = (c.ts - timedelta(seconds=c.interval_s) + offset).date()
        export = c.export or zero
        key = (c.meter_id, day)
        d = daily.get(key)
        if d is None:
            daily[key] = [c.energy, export, 1, c.interval_s, c.energy]
        else:
            d[0] += c.energy
            d[1] += export
            d[2] += 1
            d[3] += c.interval_s
            if c.energy > d[4]:
                d[4] = c.energy
    for (mid, day), v in daily.items():
        month = day.replace(day=1)
        m = monthly.get((mid, month))
        if m is None:
            monthly[(mid, month)] = v[:4]
        else:
            m[0] += v[0]
            m[1] += v[1]
            m[2] += v[2]
            m[3] += v[3]
        ctx.touched[mid].add(month)
    if not daily:
        return
    if connection.vendor == "postgresql":
        partitions.ensure_partitions([day for _, day in daily], partitions.DAILY_ROLLUPS)
        _upsert_rollups_pg(daily, monthly)
        _flag_gaps(list(daily), ctx)
        return
    _ts_a, dec, day_a = _adapters()
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO metering_dailyrollup (meter_id, day, energy, export, n_readings, covered_s, max_energy) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (meter_id, day) DO UPDATE SET "
            "energy = metering_dailyrollup.energy + excluded.energy, "
            "export = metering_dailyrollup.export + excluded.export, "
            "n_readings = metering_dailyrollup.n_readings + excluded.n_readings, "
            "covered_s = metering_dailyrollup.covered_s + excluded.covered_s, "
            "max_energy = CASE WHEN excluded.max_energy > metering_dailyrollup.max_energy "
            "THEN excluded.max_energy ELSE metering_dailyrollup.max_energy END",
            [
                (mid, day_a(day), dec(v[0]), dec(v[1]), v[2], v[3], dec(v[4]))
                for (mid, day), v in daily.items()
            ],
        )
        cur.executemany(
            "INSERT INTO metering_monthlyrollup (meter_id, month, energy, export, n_readings, covered_s) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (meter_id, month) DO UPDATE SET "
            "energy = metering_monthlyrollup.energy + excluded.energy, "
            "export = metering_monthlyrollup.export + excluded.export, "
            "n_readings = metering_monthlyrollup.n_readings + excluded.n_readings, "
            "covered_s = metering_monthlyrollup.covered_s + excluded.covered_s",
            [(mid, day_a(month), dec(v[0]), dec(v[1]), v[2], v[3]) for (mid, month), v in monthly.items()],
        )
    _flag_gaps(list(daily), ctx)


def _pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of numbers or dates (`{1,2.5000,2024-01-01}`), cast by the statement: one text
    parameter instead of one adapted parameter per element."""
    return "{" + ",".join(map(str, values)) + "}"


def _upsert_rollups_pg(
    daily: dict[tuple[int, date], list[Any]], monthly: dict[tuple[int, date], list[Any]]
) -> None:
    """The same upserts as on SQLite, as one statement per table (arrays unnested) instead of one per row."""
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO metering_dailyrollup (meter_id, day, energy, export, n_readings, covered_s, max_energy) "
            "SELECT * FROM unnest(%s::bigint[], %s::date[], %s::numeric[], %s::numeric[], %s::int[], %s::int[], "
            "%s::numeric[]) ON CONFLICT (meter_id, day) DO UPDATE SET "
            "energy = metering_dailyrollup.energy + excluded.energy, "
            "export = metering_dailyrollup.export + excluded.export, "
            "n_readings = metering_dailyrollup.n_readings + excluded.n_readings, "
            "covered_s = metering_dailyrollup.covered_s + excluded.covered_s, "
            "max_energy = CASE WHEN excluded.max_energy > metering_dailyrollup.max_energy "
            "THEN excluded.max_energy ELSE metering_dailyrollup.max_energy END",
            [
                _pg_array(mid for mid, _ in daily),
                _pg_array(day for _, day in daily),
                *(_pg_array(v[k] for v in daily.values()) for k in range(5)),
            ],
        )
        cur.execute(
            "INSERT INTO metering_monthlyrollup (meter_id, month, energy, export, n_readings, covered_s) "
            "SELECT * FROM unnest(%s::bigint[], %s::date[], %s::numeric[], %s::numeric[], %s::int[], %s::int[]) "
            "ON CONFLICT (meter_id, month) DO UPDATE SET "
            "energy = metering_monthlyrollup.energy + excluded.energy, "
            "export = metering_monthlyrollup.export + excluded.export, "
            "n_readings = metering_monthlyrollup.n_readings + excluded.n_readings, "
            "covered_s = metering_monthlyrollup.covered_s + excluded.covered_s",
            [
                _pg_array(mid for mid, _ in monthly),
                _pg_array(month for _, month in monthly),
                *(_pg_array(v[k] for v in monthly.values()) for k in range(4)),
            ],
        )


def _flag_gaps(days: list[tuple[int, date]], ctx: _Context) -> None:
    """Flag days with less than 24 h of readings (`meter_gap`); gaps are shown, never filled with invented data."""
    from lowcarbon.metering.models import DailyRollup

    today = (ctx.now + LOCAL_OFFSET).date()
    wanted = {(mid, day) for mid, day in days if day < today}
    if not wanted:
        return
    # one look-up of the rollups and flags of the chunk's meters over the chunk's days (not one per meter and day)
    mids = sorted({mid for mid, _ in wanted})
    lo = min(day for _, day in wanted)
    hi = max(day for _, day in wanted)
    covered = {
        (mid, day): s
        for mid, day, s in DailyRollup.objects.filter(
            meter_id__in=mids, day__gte=lo, day__lte=hi
        ).values_list("meter_id", "day", "covered_s")
        if (mid, day) in wanted
    }
    existing = {
        (mid, day): detail
        for mid, day, detail in DataFlag.objects.filter(
            meter_id__in=mids, day__gte=lo, day__lte=hi, code="meter_gap"
        ).values_list("meter_id", "day", "detail")
        if (mid, day) in wanted
    }
    gaps = {key: covered.get(key, 0) for key in wanted if covered.get(key, 0) < 86400}
    complete = [
        (mid, day, "meter_gap")
        for mid, day in sorted(wanted)
        if (mid, day) not in gaps and (mid, day) in existing
    ]
    if complete:
        DataFlag.objects.filter(pk__in=complete).delete()
    DataFlag.objects.bulk_create(
        [
            DataFlag(meter_id=mid, day=day, code="meter_gap", detail=f"{s / 3600:.2f} h / 24 h")
            for (mid, day), s in sorted(gaps.items())
            if (mid, day) not in existing
        ]
    )
    for (mid, day), s in gaps.items():
        if (mid, day) in existing and existing[(mid, day)] != (detail := f"{s / 3600:.2f} h / 24 h"):
            DataFlag.objects.filter(pk=(mid, day, "meter_gap")).update(detail=detail)


def batch_summary(batch: IngestBatch) -> dict[str, Any]:
    """The counts of a batch as a plain dict (for the CLI --json and the API)."""
    return {
        "batch": batch.pk,
        "status": batch.status,
        "file": batch.filename,
        "rows": batch.rows_total,
        "accepted": batch.rows_accepted,
        "identical_duplicates": batch.rows_duplicate,
        "rejected": batch.rows_rejected,
        "rejected_by_reason": batch.rejected_by_reason,
        "error": batch.error,
    }
