"""Bulk registration files: the downloadable template (Excel and CSV) and a streaming parser of uploads.

The template has one header row in Chinese and English and, in Excel, a second sheet explaining every column,
its allowed values and the community codes. The parser reads .xlsx (openpyxl, read-only) and .csv in UTF-8 (with or
without BOM) or GBK/GB18030 (what Chinese Excel writes), recognises the header in either language, and yields
(spreadsheet row number, {column key: value}) for every non-empty row.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, BinaryIO

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.pv.domain.registration import METERING_CHOICES, PROGRAMME_CHOICES, ZHONGSHAN_BBOX


@dataclass(frozen=True)
class Column:
    """One column of the bulk file: its key (the registration field), bilingual header, help and format."""

    key: str
    zh: str
    en: str
    required: bool
    help_zh: str
    help_en: str
    width: int = 16
    as_text: bool = False

    @property
    def header(self) -> str:
        mark = "*" if self.required else ""
        return f"{mark}{self.zh} / {self.en}"

    def label(self, language: str | None = None) -> str:
        lang = language if language is not None else (get_language() or "")
        return self.en if lang.startswith("en") else self.zh


_BOX = ZHONGSHAN_BBOX
COLUMNS: tuple[Column, ...] = (
    Column(
        "name",
        "系统名称",
        "System name",
        True,
        "便于识别的名称，如“麦家屋顶光伏”",
        "A name to recognise the system",
        24,
    ),
    Column(
        "owner_real_name", "业主姓名", "Owner name", True, "户主实名", "Real name of the household owner", 12
    ),
    Column(
        "owner_phone",
        "业主手机号",
        "Owner phone",
        True,
        "11位手机号或带区号的固定电话；用于识别业主",
        "Mobile (11 digits) or fixed line with area code; identifies the owner",
        16,
        True,
    ),
    Column("address", "安装地址", "Address", True, "安装地址", "Site address", 30),
    Column(
        "community",
        "所属社区",
        "Community",
        True,
        "社区代码或名称，见说明页",
        "Community code or name (see instructions)",
        14,
    ),
    Column(
        "latitude",
        "纬度",
        "Latitude",
        True,
        f"十进制度，{_BOX.lat_min}–{_BOX.lat_max}",
        f"Decimal degrees, {_BOX.lat_min} to {_BOX.lat_max}",
        11,
    ),
    Column(
        "longitude",
        "经度",
        "Longitude",
        True,
        f"十进制度，{_BOX.lon_min}–{_BOX.lon_max}",
        f"Decimal degrees, {_BOX.lon_min} to {_BOX.lon_max}",
        11,
    ),
    Column(
        "capacity_kwp",
        "装机容量(kWp)",
        "Capacity (kWp)",
        True,
        "大于0，不超过方法学上限",
        "Above 0, at most the methodology limit",
        13,
    ),
    Column("tilt_deg", "倾角(°)", "Tilt (°)", True, "0–90，0为水平", "0 to 90, 0 = flat", 9),
    Column("azimuth_deg", "方位角(°)", "Azimuth (°)", True, "0–360，180为正南", "0 to 360, 180 = south", 10),
    Column(
        "grid_connection_date",
        "并网日期",
        "Grid-connection date",
        True,
        "YYYY-MM-DD，不得晚于今天",
        "YYYY-MM-DD, not in the future",
        14,
        True,
    ),
    Column(
        "metering",
        "计量方式",
        "Metering arrangement",
        True,
        "generation_meter（光伏发电计量表）或 bidirectional（双向电表）",
        "generation_meter (PV generation meter) or bidirectional (bidirectional meter)",
        18,
    ),
    Column(
        "meter_serial",
        "电表编号",
        "Meter serial",
        True,
        "4–64位字母、数字、“-”或“_”，全平台唯一",
        "4 to 64 letters, digits, '-' or '_'; unique on the platform",
        18,
        True,
    ),
    Column(
        "initial_register",
        "电表初始读数(kWh)",
        "Initial register (kWh)",
        False,
        "并网时电表读数，可空",
        "Register at grid connection; optional",
        14,
    ),
    Column("installer", "安装单位", "Installer", False, "可空", "Optional", 20),
    Column(
        "consent_document",
        "授权书编号",
        "Consent document ref.",
        True,
        "业主签署的委托管理授权书编号（服务机构登记时必填）",
        "Reference of the owner's signed consent (required when an aggregator registers)",
        18,
        True,
    ),
    Column(
        "programme",
        "已参与其他减排机制",
        "Other programme",
        False,
        "ccer、gec（绿证）或 other；未参与则留空",
        "ccer, gec (green certificates) or other; leave empty if none",
        14,
    ),
    Column(
        "programme_start",
        "其他机制起始日",
        "Other programme start",
        False,
        "YYYY-MM-DD",
        "YYYY-MM-DD",
        14,
        True,
    ),
    Column(
        "programme_end",
        "其他机制截止日",
        "Other programme end",
        False,
        "YYYY-MM-DD，不早于起始日",
        "YYYY-MM-DD, not before the start",
        14,
        True,
    ),
    Column("programme_reference", "其他机制登记号", "Other programme ref.", False, "可空", "Optional", 16),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}

METERING_LABELS = {
    "generation_meter": ("光伏发电计量表", "PV generation meter"),
    "bidirectional": ("双向电表", "Bidirectional meter"),
}
PROGRAMME_LABELS = {
    "ccer": ("国家核证自愿减排量", "CCER"),
    "gec": ("绿色电力证书（绿证）", "Green electricity certificates"),
    "other": ("其他", "Other"),
}


class BulkFileError(DomainError):
    """The file as a whole cannot be read (type, encoding, header)."""


def column_label(key: str, language: str | None = None) -> str:
    """The header of a column in the current language (falls back to the key)."""
    col = COLUMN_BY_KEY.get(key)
    return col.label(language) if col else key


def _norm(text: str) -> str:
    return re.sub(r"[\s*＊]+", "", text).lower()


def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for c in COLUMNS:
        for alias in (
            c.key,
            c.zh,
            c.en,
            c.zh + c.en,
            f"{c.zh}/{c.en}",
            f"{c.zh}({c.en})",
            f"{c.zh}（{c.en}）",
        ):
            out[_norm(alias)] = c.key
    return out


_ALIASES = _aliases()


def match_header(text: str) -> str | None:
    """The column key of a header cell written in Chinese, English, both, or as the key itself."""
    norm = _norm(text)
    if not norm:
        return None
    if norm in _ALIASES:
        return _ALIASES[norm]
    for part in re.split(r"[/\n|]", text):
        key = _ALIASES.get(_norm(part))
        if key:
            return key
    return None


def normalise_metering(value: Any) -> Any:
    """Accept the metering arrangement as its code or its Chinese / English label."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    low = _norm(text)
    for code, (zh, en) in METERING_LABELS.items():
        if low in {_norm(code), _norm(zh), _norm(en)}:
            return code
    if low in {"发电表", "光伏表", "单向表", "generation"}:
        return "generation_meter"
    if low in {"双向表", "bi-directional", "bidirectionalmeter"}:
        return "bidirectional"
    return text


def community_lookup(communities: Iterable[Any]) -> dict[str, str]:
    """{lower-case code, Chinese or English name (with or without 社区): code} for the given Community rows."""
    out: dict[str, str] = {}
    for c in communities:
        for alias in (c.code, c.name_zh, c.name_zh.removesuffix("社区"), c.name_en):
            if alias:
                out[alias.strip().lower()] = c.code
    return out


# ---------------------------------------------------------------------------------------------------------------
# templates


def template_csv() -> bytes:
    """The CSV template: UTF-8 with BOM (so Excel opens it in Chinese) and the bilingual header row."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([c.header for c in COLUMNS])
    return codecs.BOM_UTF8 + buf.getvalue().encode("utf-8")


def template_xlsx(communities: Iterable[Any], capacity_limit_kwp: Any) -> bytes:
    """The Excel template: sheet 1 for the systems (bilingual header, text-formatted code columns, drop-down lists);
    sheet 2 the instructions: every column, whether required, allowed values, and the community codes."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    communities = list(communities)
    wb = Workbook()
    ws = wb.active
    ws.title = "光伏系统 PV systems"
    head_font = Font(bold=True)
    req_fill = PatternFill("solid", fgColor="FFE8F5E9")
    opt_fill = PatternFill("solid", fgColor="FFF5F5F5")
    for i, c in enumerate(COLUMNS, start=1):
        cell = ws.cell(row=1, column=i, value=c.header)
        cell.font = head_font
        cell.fill = req_fill if c.required else opt_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = c.width
        if c.as_text:
            ws.column_dimensions[letter].number_format = "@"
    ws.row_dimensions[1].height = 34
    ws.freeze_panes = "A2"

    info = wb.create_sheet("填写说明 Instructions")
    info.column_dimensions["A"].width = 30
    info.column_dimensions["B"].width = 12
    info.column_dimensions["C"].width = 60
    info.column_dimensions["D"].width = 60
    rows: list[list[Any]] = [
        ["小榄镇分布式光伏批量登记模板 / Bulk registration template for distributed PV, Xiaolan"],
        [
            "每行登记一个户用光伏系统；请勿修改表头。带 * 的列为必填。任何一行有错误时整个文件都不会保存，系统会列出每一行的每个错误。"
        ],
        [
            "One household PV system per row; do not change the header. Columns marked * are required. If any row has an "
            "error nothing in the file is saved, and every error of every row is listed."
        ],
        [f"装机容量上限 / Capacity limit: {capacity_limit_kwp} kWp"],
        [],
        ["列 / Column", "必填 / Required", "说明 / Description", "Description (English)"],
    ]
    for c in COLUMNS:
        rows.append([c.header, "是 / yes" if c.required else "否 / no", c.help_zh, c.help_en])
    rows += [[], ["计量方式 / Metering arrangement", "", "", ""]]
    for code, (zh, en) in METERING_LABELS.items():
        rows.append([code, "", zh, en])
    rows += [[], ["其他减排机制 / Other programmes", "", "", ""]]
    for code, (zh, en) in PROGRAMME_LABELS.items():
        rows.append([code, "", zh, en])
    rows += [[], ["社区代码 / Community code", "", "社区名称", "Community name"]]
    first_community_row = len(rows) + 1
    for c in communities:
        rows.append([c.code, "", c.name_zh, c.name_en])
    last_community_row = len(rows)
    for r in rows:
        info.append(r)
    for r in (1, 6, first_community_row - 1):
        for cell in info[r]:
            cell.font = head_font

    def col_letter(key: str) -> str:
        return get_column_letter([c.key for c in COLUMNS].index(key) + 1)

    if communities:
        dv = DataValidation(
            type="list",
            formula1=f"'{info.title}'!$A${first_community_row}:$A${last_community_row}",
            allow_blank=True,
            showErrorMessage=False,
        )
        ws.add_data_validation(dv)
        dv.add(f"{col_letter('community')}2:{col_letter('community')}5001")
    for key, choices in (("metering", METERING_CHOICES), ("programme", PROGRAMME_CHOICES)):
        dv = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True)
        ws.add_data_validation(dv)
        dv.add(f"{col_letter(key)}2:{col_letter(key)}5001")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# parser


def _header_map(cells: Iterable[Any]) -> dict[int, str]:
    """{column index: key}; refuses unknown, duplicated or missing required columns."""
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(cells):
        text = "" if raw is None else str(raw).strip()
        if not text:
            continue
        key = match_header(text)
        if key is None:
            unknown.append(text)
            continue
        if key in seen:
            raise BulkFileError(
                "duplicate_column",
                _("The column “%(col)s” appears twice.") % {"col": column_label(key)},
                row=1,
            )
        seen.add(key)
        mapping[i] = key
    if unknown:
        raise BulkFileError(
            "unknown_column",
            _("Unknown columns: %(cols)s. Use the template's header row.") % {"cols": ", ".join(unknown)},
            row=1,
        )
    missing = [c for c in COLUMNS if c.required and c.key not in seen and c.key != "consent_document"]
    if missing:
        raise BulkFileError(
            "missing_column",
            _("Required columns are missing: %(cols)s.")
            % {"cols": ", ".join(column_label(c.key) for c in missing)},
            row=1,
        )
    return mapping


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    return value


def _records(rows: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    header: dict[int, str] | None = None
    for row_number, cells in rows:
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in cells):
            continue
        if header is None:
            header = _header_map(cells)
            continue
        record: dict[str, Any] = dict.fromkeys(header.values())
        for i, key in header.items():
            if i < len(cells):
                record[key] = _clean(cells[i])
        yield row_number, record
    if header is None:
        raise BulkFileError("empty_file", _("The file is empty."))


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with BOM: utf-8-sig), UTF-16 with BOM, else GB18030 (a superset of GBK) when not valid UTF-8."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _csv_rows(stream: BinaryIO) -> Iterator[tuple[int, list[Any]]]:
    sample = stream.read(65536)
    stream.seek(0)
    encoding = detect_encoding(sample)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")  # type: ignore[arg-type]
    try:
        first = text.readline()
        counts = {d: first.count(d) for d in (",", ";", "\t")}
        delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
        reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
        for cells in reader:
            yield reader.line_num, list(cells)
    except UnicodeDecodeError:
        raise BulkFileError(
            "encoding", _("The file's text encoding could not be read; save it as CSV UTF-8 or as .xlsx.")
        )
    except csv.Error as exc:
        raise BulkFileError("csv", _("The CSV file is malformed: %(err)s") % {"err": exc})
    finally:
        text.detach()


def _xlsx_rows(stream: BinaryIO) -> Iterator[tuple[int, list[Any]]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(stream, read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError, ValueError):
        raise BulkFileError("xlsx", _("The Excel file could not be read; save it again as .xlsx."))
    try:
        ws = wb.worksheets[0]
        for n, values in enumerate(ws.iter_rows(values_only=True), start=1):
            yield n, list(values)
    finally:
        wb.close()


def parse_upload(uploaded: Any, filename: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, record) for every non-empty data row of an uploaded .xlsx or .csv file.

    Row numbers are those a spreadsheet shows (the header is row 1). Raises `BulkFileError` for a file that cannot
    be read as a whole. Records are keyed by column key; empty cells are None."""
    name = filename or getattr(uploaded, "name", "") or ""
    ext = PurePath(name).suffix.lower()
    stream: BinaryIO = getattr(uploaded, "file", uploaded)
    if hasattr(uploaded, "seek"):
        uploaded.seek(0)
    head = stream.read(8)
    stream.seek(0)
    if ext == ".xls" or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise BulkFileError(
            "xls", _("Old Excel .xls files are not supported; save the file as .xlsx or CSV.")
        )
    if head.startswith(b"PK\x03\x04") or ext == ".xlsx":
        rows = _xlsx_rows(stream)
    elif ext in ("", ".csv", ".txt"):
        rows = _csv_rows(stream)
    else:
        raise BulkFileError("file_type", _("Upload an .xlsx or .csv file."))
    yield from _records(rows)
