"""The monthly town report: Chinese PDF whose text carries the month's figures (checked with pdftotext), the CLI
`lowcarbon town-report`, and the download page for officials only."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from lowcarbon.accounts.models import Role
from lowcarbon.dashboard import report
from lowcarbon.methodology.models import Quantification
from lowcarbon.registry import ledger
from tests.dashboard.helpers import system_in
from tests.factories import PASSWORD, make_user
from tests.registry.cert_helpers import issue

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing"
)


def pdf_text(data: bytes, tmp_path: Path) -> str:
    f = tmp_path / "r.pdf"
    f.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(f), "-"], capture_output=True, check=True)
    return " ".join(out.stdout.decode("utf-8").split())


@pytest.fixture
def town(media_root):
    owners = [make_user(Role.OWNER_HOUSEHOLD) for _ in range(6)]
    systems = [system_in("dongqu", o, capacity_kwp="5", kwh="1000", months=[6]) for o in owners]
    acc = ledger.account_for_user(owners[0])
    issue([(systems[0], 4, acc)], applicant=owners[0])
    return {"owners": owners, "systems": systems}


@needs_pdftotext
def test_pdf_text_has_the_month_figures(town, tmp_path):
    month = date(2025, 6, 1)
    ctx = report.report_context(month)
    er = sum(q.er_kg for q in Quantification.objects.filter(month=month, superseded_at__isnull=True))
    assert ctx["generation_kwh"] == Decimal(6000)
    assert ctx["er_kg"] == er
    assert ctx["systems"] == 6 and ctx["capacity_kwp"] == Decimal(30)
    text = pdf_text(report.report_pdf(month), tmp_path)
    assert "小榄镇低碳月度报告" in text
    assert "2025 年 6 月" in text
    assert "本月计量发电量" in text and "6000" in text
    assert f"{(er / 1000).quantize(Decimal('0.01'))}" in text
    assert "一、装机容量" in text and "四、交易" in text
    assert "东区社区" in text  # the area table (6 systems ≥ k)


@needs_pdftotext
def test_cli_writes_the_report(town, tmp_path):
    out = tmp_path / "town.pdf"
    call_command("town_report", "--month", "2025-06", "-o", str(out))
    assert out.read_bytes().startswith(b"%PDF")
    assert "小榄镇低碳月度报告" in pdf_text(out.read_bytes(), tmp_path)
    with pytest.raises(CommandError):
        call_command("town_report", "--month", "2025-6x", "-o", str(out))
    with pytest.raises(CommandError):
        call_command("town_report", "--month", "2999-01", "-o", str(out))


def test_download_page_is_for_officials(town):
    owner = Client()
    assert owner.login(username=town["owners"][0].username, password=PASSWORD)
    assert owner.get("/my/reports/").status_code == 403
    assert owner.get("/my/reports/town-2025-6.pdf").status_code == 403
    admin = make_user(Role.REGISTRY_ADMIN)
    c = Client()
    assert c.login(username=admin.username, password=PASSWORD)
    page = c.get("/my/reports/").content.decode()
    assert "/my/reports/town-2025-6.pdf" in page
    resp = c.get("/my/reports/town-2025-6.pdf")
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF")
    assert c.get("/my/reports/town-2025-13.pdf").status_code == 404
    assert c.get("/my/reports/town-2999-1.pdf").status_code == 404


def test_small_month_is_not_published(media_root):
    system_in("dongqu", make_user(Role.OWNER_HOUSEHOLD), kwh="900", months=[6])
    ctx = report.report_context(date(2025, 6, 1))
    assert ctx["generation_kwh"] is None and ctx["er_kg"] is None and not ctx["publishable"]
    assert ctx["areas"] == []
