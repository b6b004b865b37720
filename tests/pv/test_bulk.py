"""Bulk registration: the template round-trips, files in GBK and UTF-8 are read, and a file with any bad row saves
nothing while every bad row is reported with its column."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import datetime

import pytest
from openpyxl import load_workbook

from lowcarbon.accounts.models import Role, User
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.metering.models import Meter
from lowcarbon.pv import bulk
from lowcarbon.pv.models import Community, ManagementConsent, PVSystem
from lowcarbon.pv.services import do_bulk_register
from tests.factories import make_org, make_system, make_user

KEYS = [c.key for c in bulk.COLUMNS]


def row(n: int, **over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": f"户用光伏{n}",
        "owner_real_name": f"业主{n}",
        "owner_phone": f"1380013{n:04d}",
        "address": f"小榄镇新市路{n}号",
        "community": "xinshi",
        "latitude": "22.678",
        "longitude": "113.27",
        "capacity_kwp": "6.6",
        "tilt_deg": "20",
        "azimuth_deg": "180",
        "grid_connection_date": "2024-05-01",
        "metering": "generation_meter",
        "meter_serial": f"BULK-{n:05d}",
        "initial_register": "",
        "installer": "中山某光伏公司",
        "consent_document": f"AUTH-{n:04d}",
        "programme": "",
        "programme_start": "",
        "programme_end": "",
        "programme_reference": "",
    }
    base.update(over)
    return base


def csv_bytes(
    rows: list[dict[str, object]], encoding: str = "utf-8", bom: bool = False, headers=None
) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(headers or [c.header for c in bulk.COLUMNS])
    for r in rows:
        w.writerow([r.get(k, "") for k in KEYS])
    data = buf.getvalue().encode(encoding)
    return (codecs.BOM_UTF8 + data) if bom else data


def upload(data: bytes, name: str) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


@pytest.fixture
def agent(db):
    org = make_org("aggregator")
    return make_user(Role.AGGREGATOR, org=org), org


# --- parser ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_gbk_csv_is_parsed():
    data = csv_bytes([row(1, name="麦家屋顶", address="小榄镇绩东一路8号")], encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    records = list(bulk.parse_upload(upload(data, "households.csv")))
    assert records[0][0] == 2
    assert records[0][1]["name"] == "麦家屋顶"
    assert records[0][1]["address"] == "小榄镇绩东一路8号"
    assert records[0][1]["owner_real_name"] == "业主1"


@pytest.mark.django_db
def test_utf8_with_and_without_bom_and_english_or_chinese_headers():
    for data in (
        csv_bytes([row(1)], bom=True),
        csv_bytes([row(1)]),
        csv_bytes([row(1)], headers=[c.en for c in bulk.COLUMNS]),
        csv_bytes([row(1)], headers=[c.zh for c in bulk.COLUMNS]),
        csv_bytes([row(1)], headers=KEYS),
    ):
        [(n, rec)] = list(bulk.parse_upload(upload(data, "f.csv")))
        assert n == 2 and rec["name"] == "户用光伏1" and rec["meter_serial"] == "BULK-00001"


@pytest.mark.django_db
def test_unknown_or_missing_columns_refuse_the_file():
    with pytest.raises(DomainError) as exc:
        list(bulk.parse_upload(upload(csv_bytes([row(1)], headers=[*KEYS[:-1], "颜色"]), "f.csv")))
    assert "颜色" in exc.value.message
    with pytest.raises(DomainError) as exc:
        list(bulk.parse_upload(upload(b"name,address\r\nx,y\r\n", "f.csv")))
    assert exc.value.code == "missing_column"
    with pytest.raises(DomainError) as exc:
        list(bulk.parse_upload(upload(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "old.xls")))
    assert exc.value.code == "xls"


# --- template round trips ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_xlsx_template_round_trips(agent):
    user, org = agent
    content = bulk.template_xlsx(Community.objects.order_by("code"), 6000)
    wb = load_workbook(io.BytesIO(content))
    assert len(wb.worksheets) == 2
    info = [str(c.value) for r in wb.worksheets[1].iter_rows() for c in r if c.value]
    assert "xinshi" in info and "新市社区" in info
    assert any("Grid-connection date" in v for v in info)
    ws = wb.worksheets[0]
    assert [c.value for c in ws[1]] == [c.header for c in bulk.COLUMNS]
    for n in (1, 2, 3):
        values = row(n)
        values["grid_connection_date"] = datetime(2024, 5, n)  # Excel turns typed dates into dates
        values["owner_phone"] = int(str(values["owner_phone"]))  # and phones into numbers
        values["capacity_kwp"] = 6.6
        ws.append([values[k] if values[k] != "" else None for k in KEYS])
    ws.append([None] * len(KEYS))  # trailing empty rows are ignored
    out = io.BytesIO()
    wb.save(out)

    result = do_bulk_register(
        bulk.parse_upload(upload(out.getvalue(), "filled.xlsx")), actor=user, aggregator_org=org
    )
    assert result.ok, result.problems
    assert result.rows_read == 3
    codes = [s.code for s in result.created]
    assert all(c.startswith("PV-") for c in codes) and len(set(codes)) == 3
    first = PVSystem.objects.get(code=codes[0])
    assert first.owner_user.real_name == "业主1" and first.owner_user.phone == "13800130001"
    assert str(first.capacity_kwp) == "6.600"
    assert first.grid_connection_date.isoformat() == "2024-05-01"
    assert ManagementConsent.objects.get(system=first).document == "AUTH-0001"
    assert (
        Meter.objects.filter(subject_kind="pv_system", subject_id__in=[s.pk for s in result.created]).count()
        == 3
    )


@pytest.mark.django_db
def test_csv_template_round_trips_with_labels_and_community_names(agent):
    user, org = agent
    header = bulk.template_csv()
    assert header.startswith(codecs.BOM_UTF8)
    text = header.decode("utf-8-sig")
    rows = [
        row(1, metering="双向电表", community="永宁社区"),
        row(
            2, community="Yongning", programme="gec", programme_start="2024-05-01", programme_end="2024-12-31"
        ),
        row(3, owner_real_name="业主1", owner_phone="13800130001"),  # the same household owns two systems
    ]
    body = io.StringIO()
    w = csv.writer(body)
    for r in rows:
        w.writerow([r[k] for k in KEYS])
    data = (text + body.getvalue()).encode("utf-8-sig")
    result = do_bulk_register(bulk.parse_upload(upload(data, "t.csv")), actor=user, aggregator_org=org)
    assert result.ok, result.problems
    s1, s2, s3 = result.created
    assert s1.metering == "bidirectional" and s1.community.code == "yongning"
    assert Meter.objects.get(subject_id=s1.pk, subject_kind="pv_system").purpose == "pv_bidirectional"
    assert s2.programme_claims.get().programme == "gec"
    assert s3.owner_user == s1.owner_user
    assert User.objects.filter(phone="13800130001").count() == 1


# --- all or nothing -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_one_bad_row_saves_nothing_and_every_bad_row_is_reported(agent):
    user, org = agent
    make_system(make_user(Role.OWNER_HOUSEHOLD), serial="ALREADY-0001")
    systems_before = PVSystem.objects.count()
    users_before = User.objects.count()
    rows = [
        row(1),
        row(2, capacity_kwp="9000"),  # above the limit
        row(3),
        row(4, latitude="23.5", owner_phone="12345", consent_document=""),  # three problems
        row(5, meter_serial="BULK-00001"),  # duplicate of row 2 of the file (spreadsheet row 2)
        row(6, meter_serial="already-0001"),  # already on the platform
        row(7, programme="ccer", programme_start="2024-06-01", programme_end="2024-01-01"),
    ]
    result = do_bulk_register(
        bulk.parse_upload(upload(csv_bytes(rows), "bad.csv")), actor=user, aggregator_org=org
    )
    assert not result.ok
    assert result.created == []
    got = {(p.row, p.field, p.code) for p in result.problems}
    assert got == {
        (3, "capacity_kwp", "capacity_above_limit"),
        (5, "latitude", "outside_area"),
        (5, "owner_phone", "invalid_phone"),
        (5, "consent_document", "consent_document_required"),
        (6, "meter_serial", "duplicate_serial_in_file"),
        (7, "meter_serial", "serial_in_use"),
        (8, "programme_end", "period_order"),
    }
    dup = next(p for p in result.problems if p.code == "duplicate_serial_in_file")
    assert "BULK-00001" in dup.message and "2" in dup.message
    assert bulk.column_label("programme_end", "zh-hans") == "其他机制截止日"
    assert bulk.column_label("programme_end", "en") == "Other programme end"
    assert PVSystem.objects.count() == systems_before
    assert User.objects.count() == users_before


@pytest.mark.django_db
def test_phone_with_two_names_in_one_file_is_refused(agent):
    user, org = agent
    rows = [row(1), row(2, owner_phone="13800130001", owner_real_name="别人")]
    result = do_bulk_register(
        bulk.parse_upload(upload(csv_bytes(rows), "x.csv")), actor=user, aggregator_org=org
    )
    assert [(p.row, p.field, p.code) for p in result.problems] == [
        (3, "owner_real_name", "owner_phone_conflict")
    ]


@pytest.mark.django_db
def test_only_own_aggregator_organisation_and_empty_file(agent):
    user, _org = agent
    other = make_org("aggregator")
    data = csv_bytes([row(1)])
    with pytest.raises(DomainError):
        do_bulk_register(bulk.parse_upload(upload(data, "x.csv")), actor=user, aggregator_org=other)
    with pytest.raises(DomainError):
        do_bulk_register(bulk.parse_upload(upload(data, "x.csv")), actor=user, aggregator_org=None)
    owner = make_user(Role.OWNER_HOUSEHOLD)
    with pytest.raises(DomainError):
        do_bulk_register(bulk.parse_upload(upload(data, "x.csv")), actor=owner, aggregator_org=None)
    with pytest.raises(DomainError) as exc:
        do_bulk_register(
            bulk.parse_upload(upload(bulk.template_csv(), "x.csv")), actor=user, aggregator_org=_org
        )
    assert exc.value.code == "empty_file"
    assert not PVSystem.objects.exists()


@pytest.mark.django_db
def test_registry_admin_bulk_without_aggregator_records_no_consent():
    admin = make_user(Role.REGISTRY_ADMIN)
    rows = [row(1, consent_document="")]
    result = do_bulk_register(
        bulk.parse_upload(upload(csv_bytes(rows), "x.csv")), actor=admin, aggregator_org=None
    )
    assert result.ok, result.problems
    assert not ManagementConsent.objects.exists()
