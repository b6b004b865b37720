"""Pure rules: notices in one or two languages, language fallback, uploads checked against their content,
computed outcomes summed by year."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowcarbon.info.domain import content

pytestmark = pytest.mark.unit


def codes(problems):  # type: ignore[no-untyped-def]
    return {(p.field, p.code) for p in problems}


def test_a_draft_needs_a_title_in_one_language():
    assert codes(content.check_article({}, {}, for_publication=False)) == {("title_zh", content.NO_LANGUAGE)}
    assert content.check_article({"en": "Only English"}, {}, for_publication=False) == []


def test_a_text_needs_its_title_and_publication_needs_the_text():
    p = content.check_article({"zh": "标题"}, {"en": "text without title"}, for_publication=False)
    assert codes(p) == {("title_en", content.BODY_NEEDS_TITLE)}
    p = content.check_article({"zh": "标题", "en": "Title"}, {"zh": "正文"}, for_publication=True)
    assert codes(p) == {("body_en", content.TITLE_NEEDS_BODY)}
    assert content.check_article({"zh": "标题"}, {"zh": "正文"}, for_publication=True) == []


def test_too_long_title_is_refused():
    p = content.check_article({"zh": "长" * 201}, {"zh": "x"}, for_publication=True)
    assert ("title_zh", content.TOO_LONG) in codes(p)


def test_pick_falls_back_to_the_other_language_and_says_so():
    assert content.pick({"zh": "中文", "en": "English"}, "en") == content.Picked("English", "en", False)
    assert content.pick({"zh": "中文", "en": " "}, "en") == content.Picked("中文", "zh", True)
    assert content.pick({"zh": "", "en": "English"}, "zh") == content.Picked("English", "en", True)


@given(st.text(max_size=50), st.text(max_size=50), st.sampled_from(["zh", "en"]))
def test_pick_shows_text_whenever_there_is_some(zh, en, lang):
    picked = content.pick({"zh": zh, "en": en}, lang)
    assert bool(picked.text) == bool(zh.strip() or en.strip())
    assert picked.fallback == (not {"zh": zh, "en": en}[lang].strip() and bool(picked.text))


def test_summary_is_the_first_paragraph_cut():
    assert content.summary("第一段\n继续\n\n第二段") == "第一段 继续 第二段"
    assert content.summary("各社区，各部门：\n\n方案印发。") == "方案印发。"  # the salutation is skipped
    assert content.summary("x" * 300, 10) == "x" * 9 + "…"


def test_scheduled_publication_is_not_public_before_its_time():
    now = datetime(2025, 6, 1, tzinfo=UTC)
    assert content.is_public(True, now - timedelta(seconds=1), now)
    assert not content.is_public(True, now + timedelta(hours=1), now)
    assert not content.is_public(False, now - timedelta(days=1), now)


ALLOWED = (".pdf", ".csv", ".png")


def test_uploads_checked_by_extension_size_and_content():
    assert content.check_upload("a.pdf", 100, b"%PDF-1.7 ...", ALLOWED, 1000) == []
    assert content.check_upload("a.csv", 10, "表号,时间\n".encode(), ALLOWED, 1000) == []
    assert codes(content.check_upload("a.exe", 10, b"MZ", ALLOWED, 1000)) == {("file", content.FILE_TYPE)}
    assert codes(content.check_upload("a.pdf", 10, b"MZ\x90\x00", ALLOWED, 1000)) == {
        ("file", content.FILE_CONTENT)
    }
    assert codes(content.check_upload("a.pdf", 2000, b"%PDF-", ALLOWED, 1000)) == {
        ("file", content.FILE_SIZE)
    }
    assert codes(content.check_upload("a.csv", 0, b"", ALLOWED, 1000)) == {("file", content.FILE_EMPTY)}
    assert codes(content.check_upload("a.csv", 4, b"a\x00b", ALLOWED, 1000)) == {
        ("file", content.FILE_CONTENT)
    }


def test_year_outcomes_sum_months_by_year():
    gen = {
        date(2024, 12, 1): Decimal("100"),
        date(2025, 1, 1): Decimal("500"),
        date(2025, 2, 1): Decimal("400"),
    }
    er = {date(2025, 1, 1): Decimal("328.2625"), date(2025, 2, 1): Decimal("262.61")}
    years = content.year_outcomes(gen, er)
    assert [y.year for y in years] == [2025, 2024]
    y2025 = years[0]
    assert y2025.generation_kwh == Decimal("900") and y2025.er_t == Decimal("0.59")
    assert y2025.months == 2 and not y2025.full_year and y2025.period == "2025-01 – 2025-02"
    full = content.year_outcomes({date(2025, m, 1): Decimal(1) for m in range(1, 13)}, {})[0]
    assert full.full_year and full.period == "2025"


def test_rate_limit():
    assert not content.rate_limited(4, 5) and content.rate_limited(5, 5)
