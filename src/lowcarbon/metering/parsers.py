"""Streaming readers of reading files and payloads: CSV (UTF-8, UTF-8 with BOM, GBK), Excel (.xlsx) and JSON
records, each yielding RawRow with the original text so a rejected row can be shown as it was sent."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, Any, TypeVar

from lowcarbon.metering.domain.validate import RawRow, canonical_field
from lowcarbon.metering.domain.vector import CellChunk


class FileFormatError(ValueError):
    """The file as a whole cannot be read (not CSV/Excel, no header)."""


def _decoded_lines(binary: IO[bytes]) -> io.TextIOWrapper:
    head = binary.read(65536)
    encoding = "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is fine
        if exc.start < len(head) - 4:
            encoding = "gb18030"
    return io.TextIOWrapper(
        io.BufferedReader(_Prefixed(head, binary), buffer_size=1 << 16),
        encoding=encoding,
        errors="replace",
        newline="",
    )


class _Prefixed(io.RawIOBase):
    """A binary stream that replays an already-read prefix before the rest."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(b))
        n = len(data)
        b[:n] = data
        return n


T = TypeVar("T")


def _blank(cells: list[str]) -> bool:
    return not cells or (not cells[0].strip() and all(not c.strip() for c in cells))


class CsvRows:
    """Rows of a CSV file; the first row is the header (Chinese or English column names).

    Iterating gives RawRow one by one; `cell_chunks` gives the same rows (same numbers, same blank rows skipped)
    in chunks of cells for the bulk ingest path. The file is opened on first use, so a file without a usable
    header fails there (FileFormatError), as a generator would. `guarded()` also reports any other failure of the
    reader (a NUL byte, a field over the size limit) as a FileFormatError."""

    def __init__(self, binary: IO[bytes], *, guarded: bool = False) -> None:
        self._binary = binary
        self._guarded = guarded
        self._rows: Iterator[RawRow] | None = None

    def guarded(self) -> CsvRows:
        return CsvRows(self._binary, guarded=True)

    def __iter__(self) -> CsvRows:
        return self

    def __next__(self) -> RawRow:
        if self._rows is None:
            self._rows = self._guard(self._iter_rows())
        return next(self._rows)

    def _open(self) -> tuple[list[str], Iterator[list[str]]]:
        reader = csv.reader(_decoded_lines(self._binary))
        try:
            header = next(reader)
        except StopIteration:
            raise FileFormatError("empty file")
        names = [canonical_field(h) for h in header]
        if "meter_serial" not in names or "timestamp" not in names:
            raise FileFormatError("header must name meter_serial and timestamp")
        return names, reader

    def _iter_rows(self) -> Iterator[RawRow]:
        names, reader = self._open()
        for i, cells in enumerate(reader, start=1):
            if _blank(cells):
                continue
            yield RawRow(i, dict(zip(names, cells, strict=False)), ",".join(cells))

    def cell_chunks(self, size: int) -> Iterator[CellChunk]:
        """Chunks of `size` non-blank rows (the last one shorter), numbered as when iterating."""
        return self._guard(self._iter_chunks(size))

    def _iter_chunks(self, size: int) -> Iterator[CellChunk]:
        names, reader = self._open()
        number = 1
        while True:
            rows: list[list[str]] = []
            numbers: list[int] = []
            while len(rows) < size:
                block = list(islice(reader, size - len(rows)))
                if not block:
                    break
                first = number
                number += len(block)
                suspects = [k for k, c in enumerate(block) if not c or not c[0] or c[0].isspace()]
                blank = {k for k in suspects if _blank(block[k])}
                if blank:
                    keep = [k for k in range(len(block)) if k not in blank]
                    rows.extend(block[k] for k in keep)
                    numbers.extend(first + k for k in keep)
                else:
                    rows.extend(block)
                    numbers.extend(range(first, first + len(block)))
            if not rows:
                return
            yield CellChunk(names, rows, numbers)

    def _guard(self, it: Iterator[T]) -> Iterator[T]:
        if not self._guarded:
            return it
        return _reader_errors_as_format_errors(it)


def _reader_errors_as_format_errors(it: Iterator[T]) -> Iterator[T]:
    """Any failure of the reader itself is about the file (reading rows touches no database)."""
    try:
        yield from it
    except FileFormatError:
        raise
    except Exception as exc:
        raise FileFormatError(
            f"the file is damaged or not in a supported format ({exc.__class__.__name__}: {exc})"[:500]
        )


def iter_csv(binary: IO[bytes]) -> CsvRows:
    """Rows of a CSV file; the first row is the header (Chinese or English column names)."""
    return CsvRows(binary)


def iter_xlsx(binary: IO[bytes]) -> Iterator[RawRow]:
    """Rows of the first sheet of an Excel workbook (read-only, streaming)."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(binary, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a non-xlsx file
        raise FileFormatError(f"not an Excel workbook: {exc.__class__.__name__}")
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        try:
            header = next(rows)
        except StopIteration:
            raise FileFormatError("empty sheet")
        names = [canonical_field(str(h or "")) for h in header]
        if "meter_serial" not in names or "timestamp" not in names:
            raise FileFormatError("header must name meter_serial and timestamp")
        for i, values in _guarded(rows):
            if values is None or all(v is None or str(v).strip() == "" for v in values):
                continue
            cells = [
                "" if v is None else (v.isoformat(sep=" ") if hasattr(v, "isoformat") else str(v))
                for v in values
            ]
            fields = {names[j]: cells[j] for j in range(min(len(names), len(cells)))}
            yield RawRow(i, fields, ",".join(cells))
    finally:
        wb.close()


def _guarded(rows: Iterator[Any]) -> Iterator[tuple[int, Any]]:
    """Numbered rows of a sheet; a workbook damaged part-way (truncated XML ...) becomes a FileFormatError."""
    i = 0
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # openpyxl/XML parsers raise many kinds for a damaged file
            raise FileFormatError(f"damaged Excel workbook after row {i}: {exc.__class__.__name__}")
        i += 1
        yield i, values


def iter_records(records: Iterable[dict[str, Any]]) -> Iterator[RawRow]:
    """Rows of a JSON batch: a list of objects with the same field names as the CSV header."""
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            yield RawRow(i, {}, json.dumps(rec, ensure_ascii=False, default=str)[:2000])
            continue
        fields = {canonical_field(str(k)): (None if v is None else str(v)) for k, v in rec.items()}
        yield RawRow(i, fields, json.dumps(rec, ensure_ascii=False, default=str)[:2000])


def iter_file(binary: IO[bytes], filename: str) -> Iterator[RawRow]:
    """Pick the reader by file name (.xlsx → Excel, otherwise CSV)."""
    if filename.lower().endswith((".xlsx", ".xlsm")):
        return iter_xlsx(binary)
    return iter_csv(binary)
