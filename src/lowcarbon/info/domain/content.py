"""Rules of bilingual notices, uploads, cooperation requests and computed project outcomes (pure Python).

Every check answers stable snake_case reason codes with the field they concern; the services turn them into
translated messages and refuse the whole change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

LANGS = ("zh", "en")
TITLE_MAX = 200
BODY_MAX = 20000
SUMMARY_CHARS = 140

# reason codes
REQUIRED = "required"
TOO_LONG = "too_long"
TITLE_NEEDS_BODY = "title_needs_body"
BODY_NEEDS_TITLE = "body_needs_title"
NO_LANGUAGE = "no_language"
FILE_TYPE = "file_type"
FILE_SIZE = "file_size"
FILE_CONTENT = "file_content"
FILE_EMPTY = "file_empty"


@dataclass(frozen=True)
class Problem:
    """A refused value: the field and the reason code (with arguments for the message)."""

    field: str
    code: str
    args: tuple[tuple[str, str], ...] = ()


def check_article(
    titles: Mapping[str, str], bodies: Mapping[str, str], *, for_publication: bool
) -> list[Problem]:
    """A notice is written in Chinese, English or both. A draft needs a title in at least one language; a body
    without a title in its language is refused. To be published, every language with a title needs its body and at
    least one language must be complete, so the public page always has text to show."""
    problems: list[Problem] = []
    complete = 0
    for lang in LANGS:
        title = (titles.get(lang) or "").strip()
        body = (bodies.get(lang) or "").strip()
        if len(title) > TITLE_MAX:
            problems.append(Problem(f"title_{lang}", TOO_LONG, (("max", str(TITLE_MAX)),)))
        if len(body) > BODY_MAX:
            problems.append(Problem(f"body_{lang}", TOO_LONG, (("max", str(BODY_MAX)),)))
        if body and not title:
            problems.append(Problem(f"title_{lang}", BODY_NEEDS_TITLE))
        if title and not body and for_publication:
            problems.append(Problem(f"body_{lang}", TITLE_NEEDS_BODY))
        if title and body:
            complete += 1
    if not any((titles.get(lang) or "").strip() for lang in LANGS):
        problems.append(Problem("title_zh", NO_LANGUAGE))
    elif for_publication and complete == 0 and not problems:
        problems.append(Problem("body_zh", NO_LANGUAGE))
    return problems


@dataclass(frozen=True)
class Picked:
    """The text shown in a language: `fallback` is True when the requested language had none."""

    text: str
    lang: str
    fallback: bool


def pick(texts: Mapping[str, str], lang: str) -> Picked:
    """The text in `lang` ("zh" or "en"), else the other language's text, flagged as a fallback."""
    own = (texts.get(lang) or "").strip()
    if own:
        return Picked(own, lang, False)
    for other in LANGS:
        if other != lang and (texts.get(other) or "").strip():
            return Picked((texts.get(other) or "").strip(), other, True)
    return Picked("", lang, False)


def summary(body: str, limit: int = SUMMARY_CHARS) -> str:
    """The opening of a plain-text body for lists: its paragraphs run together, without a short salutation line
    such as “各社区，各部门：”, cut to `limit` characters with an ellipsis."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    if len(paragraphs) > 1 and len(paragraphs[0]) <= 40 and paragraphs[0].endswith(("：", ":")):
        paragraphs = paragraphs[1:]
    text = " ".join(paragraphs)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def is_public(published: bool, publish_at: datetime | None, now: datetime) -> bool:
    """Published and its publication time has come (a future time is a scheduled publication)."""
    return published and publish_at is not None and publish_at <= now


# --- uploads ------------------------------------------------------------------------------------------------------

#: magic bytes that the first bytes of a file of each extension must start with (any of them)
_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".pdf": (b"%PDF-",),
    ".docx": (b"PK\x03\x04",),
    ".xlsx": (b"PK\x03\x04",),
    ".pptx": (b"PK\x03\x04",),
    ".doc": (b"\xd0\xcf\x11\xe0",),
    ".xls": (b"\xd0\xcf\x11\xe0",),
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".webp": (b"RIFF",),
}
#: plain-text formats: no NUL byte and readable as UTF-8 (with or without BOM) or GB18030
_TEXT = {".csv", ".txt"}


def check_upload(
    name: str, size: int, head: bytes, allowed: tuple[str, ...], max_bytes: int
) -> list[Problem]:
    """Refuse a file whose extension is not allowed, that is empty or too big, or whose first bytes do not match
    its extension (a renamed executable is not a PDF)."""
    ext = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if ext not in allowed:
        return [Problem("file", FILE_TYPE, (("ext", ext or "?"), ("allowed", ", ".join(allowed))))]
    if size <= 0:
        return [Problem("file", FILE_EMPTY)]
    if size > max_bytes:
        return [Problem("file", FILE_SIZE, (("max", str(max_bytes // (1024 * 1024))),))]
    if ext in _TEXT:
        if b"\x00" in head or not _decodes(head):
            return [Problem("file", FILE_CONTENT, (("ext", ext),))]
    elif not any(head.startswith(m) for m in _MAGIC.get(ext, ())):
        return [Problem("file", FILE_CONTENT, (("ext", ext),))]
    return []


def _decodes(head: bytes) -> bool:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            head.decode(encoding)
        except UnicodeDecodeError as exc:
            # the head may cut a multi-byte character at its end
            if exc.start >= len(head) - 3:
                return True
            continue
        return True
    return False


# --- cooperation requests -----------------------------------------------------------------------------------------


def rate_limited(recent: int, limit: int) -> bool:
    """True when a sender already sent `limit` requests within the window."""
    return recent >= limit


# --- outcomes computed from the platform's data ------------------------------------------------------------------


@dataclass(frozen=True)
class YearOutcome:
    """Metered generation and avoided emissions of a project's linked PV systems over one calendar year."""

    year: int
    first_month: date
    last_month: date
    months: int
    generation_kwh: Decimal
    er_kg: Decimal

    @property
    def er_t(self) -> Decimal:
        return (self.er_kg / 1000).quantize(Decimal("0.01"))

    @property
    def full_year(self) -> bool:
        return self.months == 12

    @property
    def period(self) -> str:
        if self.full_year:
            return str(self.year)
        return f"{self.first_month:%Y-%m} – {self.last_month:%Y-%m}"


def year_outcomes(generation: Mapping[date, Decimal], avoided: Mapping[date, Decimal]) -> list[YearOutcome]:
    """Sum monthly generation (kWh, from the meters' monthly rollups) and current avoided emissions (kg CO2e, from
    the quantification results) by calendar year, newest year first. A month counts when it has either figure."""
    by_year: dict[int, list[date]] = {}
    for month in set(generation) | set(avoided):
        by_year.setdefault(month.year, []).append(month)
    out = []
    for year, months in by_year.items():
        months.sort()
        out.append(
            YearOutcome(
                year=year,
                first_month=months[0],
                last_month=months[-1],
                months=len(months),
                generation_kwh=sum((generation.get(m, Decimal(0)) for m in months), Decimal(0)),
                er_kg=sum((avoided.get(m, Decimal(0)) for m in months), Decimal(0)),
            )
        )
    return sorted(out, key=lambda o: o.year, reverse=True)
