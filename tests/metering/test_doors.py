"""The doors to the ingest service: file upload pages, the JSON batch API and the import-readings command."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from lowcarbon.metering.domain.validate import Rejection, parse_row
from lowcarbon.metering.models import IngestBatch, Meter, QuarantinedRow, Reading
from lowcarbon.metering.parsers import iter_csv
from lowcarbon.metering.reasons import reason_message
from lowcarbon.metering.services import batch_summary
from tests.factories import make_system, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HEADER = "meter_serial,timestamp,interval_minutes,energy,cumulative,export,export_cumulative,unit,tz"


def meter_of(system) -> Meter:  # type: ignore[no-untyped-def]
    return Meter.objects.get(subject_kind="pv_system", subject_id=system.pk)


@pytest.fixture
def owner():  # type: ignore[no-untyped-def]
    return make_user("owner_household")


@pytest.fixture
def meter(owner) -> Meter:  # type: ignore[no-untyped-def]
    return meter_of(make_system(owner))


@pytest.fixture
def other_owner():  # type: ignore[no-untyped-def]
    return make_user("owner_household")


@pytest.fixture
def other_meter(other_owner) -> Meter:  # type: ignore[no-untyped-def]
    return meter_of(make_system(other_owner))


def mixed_rows(serial: str, other_serial: str) -> tuple[list[str], list[str], dict[str, int]]:
    """(good lines, bad lines, expected rejections by reason); one identical duplicate comes last among good."""
    good = [
        f"{serial},2024-06-01T10:00:00,60,3.2,,,,kWh,",
        f"{serial},2024-06-01T11:00:00+08:00,60,3500,,,,Wh,",
        f"{serial},2024-06-01 12:00,60,4.1,,,,kWh,",
    ]
    bad = {
        f"{serial},2024-06-01T13:00:00,60,9.9,,,,kWh,": "above_physical_ceiling",
        f"{serial},not-a-time,60,1,,,,kWh,": "unparseable_field",
        f"{serial},2024-06-01T14:00:00,60,1.0,,,,,": "missing_field",
        f"{serial},2024-06-01T15:00:00,60,1.0,,,,kW,": "unit_mismatch",
        f"{other_serial},2024-06-01T10:00:00,60,1.0,,,,kWh,": "unknown_meter",
        f"{serial},2023-12-31T10:00:00,60,1.0,,,,kWh,": "before_grid_connection",
        f"{serial},2024-06-01T10:00:00,60,3.3,,,,kWh,": "conflicting_duplicate",
    }
    counts: dict[str, int] = {}
    for reason in bad.values():
        counts[reason] = counts.get(reason, 0) + 1
    return good, list(bad), counts


def csv_upload(lines: list[str], name: str = "readings.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(
        name, ("\n".join([HEADER, *lines]) + "\n").encode("utf-8"), content_type="text/csv"
    )


def stored(meter: Meter) -> dict[datetime, Decimal]:
    return dict(Reading.objects.filter(meter_id=meter.pk).values_list("ts", "energy"))


def expected_message(code: str) -> str:
    with translation.override("zh-hans"):
        return escape(reason_message(code))


# ---- upload pages --------------------------------------------------------------------------------------------


def test_upload_page_shows_counts_and_each_rejection_reason(client, owner, meter, other_meter):  # type: ignore[no-untyped-def]
    good, bad, by_reason = mixed_rows(meter.serial, other_meter.serial)
    lines = [*good, *bad, good[0]]  # the repeated first row is an identical duplicate
    client.force_login(owner)

    page = client.get(reverse("metering:upload"))
    assert page.status_code == 200
    assert reverse("metering:sample_csv") in page.content.decode()

    response = client.post(reverse("metering:upload"), {"file": csv_upload(lines)}, follow=True)
    assert response.status_code == 200
    batch = IngestBatch.objects.get()
    assert response.redirect_chain[-1][0] == reverse("metering:batch_detail", args=[batch.pk])
    assert (batch.rows_total, batch.rows_accepted, batch.rows_duplicate, batch.rows_rejected) == (11, 3, 1, 7)
    assert batch.rejected_by_reason == by_reason
    assert batch.submitted_by == owner and batch.source == "upload" and batch.filename == "readings.csv"

    html = response.content.decode()
    for n in (11, 3, 1, 7):
        assert f'<div class="v">{n}</div>' in html
    for code in by_reason:
        assert code in html
        assert expected_message(code) in html
    assert escape(f"{meter.serial},not-a-time,60,1,,,,kWh,") in html
    assert reverse("metering:quarantine_csv", args=[batch.pk]) in html

    assert stored(meter) == {
        datetime(2024, 6, 1, 2, tzinfo=UTC): Decimal("3.2000"),
        datetime(2024, 6, 1, 3, tzinfo=UTC): Decimal("3.5000"),
        datetime(2024, 6, 1, 4, tzinfo=UTC): Decimal("4.1000"),
    }
    assert stored(other_meter) == {}


def test_quarantine_csv_holds_the_bad_rows_with_their_original_text(client, owner, meter, other_meter):  # type: ignore[no-untyped-def]
    good, bad, by_reason = mixed_rows(meter.serial, other_meter.serial)
    client.force_login(owner)
    client.post(reverse("metering:upload"), {"file": csv_upload([*good, *bad])})
    batch = IngestBatch.objects.get()

    response = client.get(reverse("metering:quarantine_csv", args=[batch.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"quarantine-batch-{batch.pk}.csv" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese text as UTF-8
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["row", "reason", "message", "field", "detail", "original"]
    assert [r[5] for r in rows[1:]] == bad
    assert [r[0] for r in rows[1:]] == [str(n) for n in range(len(good) + 1, len(good) + len(bad) + 1)]
    assert {r[1] for r in rows[1:]} == set(by_reason)
    for r in rows[1:]:
        with translation.override("zh-hans"):
            assert r[2] == reason_message(r[1])
    ceiling = next(r for r in rows[1:] if r[1] == "above_physical_ceiling")
    assert ceiling[3] == "energy" and "9.9" in ceiling[4]


def test_quarantine_csv_defuses_spreadsheet_formulas(client, owner, meter):  # type: ignore[no-untyped-def]
    client.force_login(owner)
    client.post(
        reverse("metering:upload"), {"file": csv_upload(["=HYPERLINK(1),2024-06-01T10:00,60,1,,,,kWh,"])}
    )
    batch = IngestBatch.objects.get()
    body = b"".join(client.get(reverse("metering:quarantine_csv", args=[batch.pk])).streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[1][1] == "unknown_meter"
    assert rows[1][5] == "'=HYPERLINK(1),2024-06-01T10:00,60,1,,,,kWh,"


def test_owner_cannot_upload_readings_for_another_owners_meter(
    client, owner, meter, other_owner, other_meter
):  # type: ignore[no-untyped-def]
    client.force_login(owner)
    lines = [f"{other_meter.serial},2024-06-01T{h:02d}:00:00,60,2.0,,,,kWh," for h in (9, 10, 11)]
    client.post(reverse("metering:upload"), {"file": csv_upload(lines)})
    batch = IngestBatch.objects.get()
    assert (batch.rows_accepted, batch.rows_rejected) == (0, 3)
    assert batch.rejected_by_reason == {"unknown_meter": 3}
    assert set(batch.quarantine.values_list("meter_serial", flat=True)) == {other_meter.serial}
    assert not Reading.objects.exists()


def test_another_owner_cannot_open_the_batch(client, owner, meter, other_owner):  # type: ignore[no-untyped-def]
    client.force_login(owner)
    client.post(
        reverse("metering:upload"), {"file": csv_upload([f"{meter.serial},2024-06-01T10:00,60,1,,,,kWh,"])}
    )
    batch = IngestBatch.objects.get()

    client.force_login(other_owner)
    assert client.get(reverse("metering:batch_detail", args=[batch.pk])).status_code == 404
    assert client.get(reverse("metering:quarantine_csv", args=[batch.pk])).status_code == 404
    listing = client.get(reverse("metering:batch_list")).content.decode()
    assert reverse("metering:batch_detail", args=[batch.pk]) not in listing

    admin = make_user("registry_admin")
    client.force_login(admin)
    assert client.get(reverse("metering:batch_detail", args=[batch.pk])).status_code == 200
    assert (
        reverse("metering:batch_detail", args=[batch.pk])
        in client.get(reverse("metering:batch_list")).content.decode()
    )


def test_batch_list_shows_own_batches_newest_first(client, owner, meter):  # type: ignore[no-untyped-def]
    client.force_login(owner)
    for name in ("first.csv", "second.csv"):
        client.post(
            reverse("metering:upload"),
            {"file": csv_upload([f"{meter.serial},2024-06-01T10:00,60,1,,,,kWh,"], name)},
        )
    html = client.get(reverse("metering:batch_list")).content.decode()
    assert html.index("second.csv") < html.index("first.csv")


def test_upload_requires_a_role_and_a_login(client, owner):  # type: ignore[no-untyped-def]
    response = client.get(reverse("metering:upload"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    client.force_login(make_user("buyer"))
    assert client.get(reverse("metering:upload")).status_code == 403
    assert client.post(reverse("metering:upload"), {"file": csv_upload([])}).status_code == 403
    assert not IngestBatch.objects.exists()
    client.force_login(make_user("aggregator"))
    assert client.get(reverse("metering:upload")).status_code == 200


def test_upload_refuses_old_excel_files_and_changes_nothing(client, owner):  # type: ignore[no-untyped-def]
    client.force_login(owner)
    response = client.post(
        reverse("metering:upload"), {"file": SimpleUploadedFile("old.xls", b"\xd0\xcf\x11\xe0 not really")}
    )
    assert response.status_code == 200
    assert ".xlsx" in response.content.decode()
    assert not IngestBatch.objects.exists()


def test_unreadable_file_is_reported_on_the_batch_page(client, owner):  # type: ignore[no-untyped-def]
    client.force_login(owner)
    response = client.post(
        reverse("metering:upload"), {"file": SimpleUploadedFile("x.csv", b"a,b,c\n1,2,3\n")}, follow=True
    )
    batch = IngestBatch.objects.get()
    assert batch.status == "failed"
    assert "meter_serial" in response.content.decode()


def test_damaged_excel_file_is_reported_not_a_server_error(client, owner, meter):  # type: ignore[no-untyped-def]
    import zipfile

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["meter_serial", "timestamp", "energy", "unit"])
    wb.active.append([meter.serial, "2024-06-01T10:00", 1, "kWh"])
    good = io.BytesIO()
    wb.save(good)
    damaged = io.BytesIO()
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(damaged, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, data[: len(data) // 2] if item.filename.endswith("sheet1.xml") else data)
    client.force_login(owner)
    response = client.post(
        reverse("metering:upload"),
        {"file": SimpleUploadedFile("damaged.xlsx", damaged.getvalue())},
        follow=True,
    )
    assert response.status_code == 200
    batch = IngestBatch.objects.get()
    assert batch.status == "failed" and "damaged" in batch.error
    assert not Reading.objects.exists()


def test_excel_upload_with_chinese_headers(client, owner, meter):  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["表号", "时间", "电量", "单位"])
    ws.append([meter.serial, datetime(2024, 6, 2, 10, 0), 2.5, "kWh"])
    ws.append([meter.serial, datetime(2024, 6, 2, 11, 0), Decimal("3.25"), "kWh"])
    ws.append([meter.serial, datetime(2024, 6, 2, 12, 0), 7.5, "kWh"])  # above 5 kWp × 1 h × 1.1
    buf = io.BytesIO()
    wb.save(buf)
    client.force_login(owner)
    upload = SimpleUploadedFile(
        "读数.xlsx",
        buf.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response = client.post(reverse("metering:upload"), {"file": upload}, follow=True)
    batch = IngestBatch.objects.get()
    assert (batch.status, batch.rows_accepted, batch.rows_rejected) == ("done", 2, 1)
    assert batch.rejected_by_reason == {"above_physical_ceiling": 1}
    assert expected_message("above_physical_ceiling") in response.content.decode()
    assert stored(meter) == {
        datetime(2024, 6, 2, 2, tzinfo=UTC): Decimal("2.5000"),
        datetime(2024, 6, 2, 3, tzinfo=UTC): Decimal("3.2500"),
    }


def test_sample_csv_documents_a_format_the_ingest_reads(client):  # type: ignore[no-untyped-def]
    response = client.get(reverse("metering:sample_csv"))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    rows = list(iter_csv(io.BytesIO(response.content)))
    assert response.content.decode("utf-8-sig").splitlines()[0] == HEADER
    assert len(rows) >= 4
    parsed = [parse_row(r) for r in rows]
    assert not [p for p in parsed if isinstance(p, Rejection)]
    assert any(r.fields.get("cumulative") for r in rows) and any(r.fields.get("energy") for r in rows)
    assert {r.fields["unit"] for r in rows} >= {"kWh", "Wh"}


# ---- JSON batch API ----------------------------------------------------------------------------------------------


def token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def test_api_batch_with_token_and_idempotent_client_key(owner, meter, other_meter):  # type: ignore[no-untyped-def]
    api = token_client(owner)
    body = {
        "client_key": "gw-7/2024-06-03",
        "readings": [
            {
                "meter_serial": meter.serial,
                "timestamp": "2024-06-03T10:00:00+08:00",
                "energy": 3.1,
                "unit": "kWh",
            },
            {
                "meter_serial": meter.serial,
                "timestamp": "2024-06-03T11:00:00",
                "energy": "2900",
                "unit": "Wh",
            },
            {
                "meter_serial": meter.serial,
                "timestamp": "2024-06-03T12:00:00",
                "energy": 0.1,
                "unit": "kWh",
                "tz": "+08:00",
            },
            {"meter_serial": meter.serial, "timestamp": "2024-06-03T13:00:00", "energy": 12, "unit": "kWh"},
            {
                "meter_serial": other_meter.serial,
                "timestamp": "2024-06-03T10:00:00",
                "energy": 1,
                "unit": "kWh",
            },
            {"meter_serial": meter.serial, "timestamp": "2024-06-03T14:00:00", "energy": 1},
        ],
    }
    first = api.post(reverse("api-readings-batch"), body, format="json")
    assert first.status_code == 201, first.content
    data = first.json()
    batch = IngestBatch.objects.get()
    assert {k: data[k] for k in batch_summary(batch)} == json.loads(json.dumps(batch_summary(batch)))
    assert (data["rows"], data["accepted"], data["rejected"]) == (6, 3, 3)
    assert batch.source == "api" and batch.submitted_by == owner
    with translation.override("zh-hans"):
        assert data["rejected_rows"] == [
            {"row": 4, "reason": "above_physical_ceiling", "message": reason_message("above_physical_ceiling"),
             "field": "energy", "detail": data["rejected_rows"][0]["detail"]},
            {"row": 5, "reason": "unknown_meter", "message": reason_message("unknown_meter"),
             "field": "meter_serial", "detail": other_meter.serial},
            {"row": 6, "reason": "missing_field", "message": reason_message("missing_field"),
             "field": "unit", "detail": ""},
        ]  # fmt: skip
    assert stored(meter)[datetime(2024, 6, 3, 4, tzinfo=UTC)] == Decimal("0.1000")

    again = api.post(reverse("api-readings-batch"), body, format="json")
    assert again.status_code == 200
    assert again.json()["batch"] == data["batch"]
    assert IngestBatch.objects.count() == 1
    assert Reading.objects.count() == 3

    # without a key a resend is a new batch of identical duplicates
    resend = api.post(reverse("api-readings-batch"), {"readings": body["readings"][:3]}, format="json")
    assert resend.status_code == 201
    assert (resend.json()["accepted"], resend.json()["identical_duplicates"]) == (0, 3)


def test_api_batch_over_the_limit_is_refused_whole(owner, meter):  # type: ignore[no-untyped-def]
    api = token_client(owner)
    reading = {"meter_serial": meter.serial, "timestamp": "2024-06-03T10:00:00", "energy": 1, "unit": "kWh"}
    response = api.post(reverse("api-readings-batch"), {"readings": [reading] * 50_001}, format="json")
    assert response.status_code == 400
    assert "50000" in json.dumps(response.json())
    assert not IngestBatch.objects.exists() and not Reading.objects.exists()


def test_api_batch_rejects_malformed_bodies(owner):  # type: ignore[no-untyped-def]
    api = token_client(owner)
    url = reverse("api-readings-batch")
    assert api.post(url, {"readings": "nope"}, format="json").status_code == 400
    assert api.post(url, {"readings": []}, format="json").status_code == 400
    assert api.post(url, {"client_key": "k" * 101, "readings": [{}]}, format="json").status_code == 400
    assert api.post(url, "{not json", content_type="application/json").status_code == 400
    assert not IngestBatch.objects.exists()


def test_api_batch_needs_a_token_and_a_role(owner, meter):  # type: ignore[no-untyped-def]
    body = {
        "readings": [
            {"meter_serial": meter.serial, "timestamp": "2024-06-03T10:00", "energy": 1, "unit": "kWh"}
        ]
    }
    assert APIClient().post(reverse("api-readings-batch"), body, format="json").status_code in (401, 403)
    assert (
        token_client(make_user("buyer")).post(reverse("api-readings-batch"), body, format="json").status_code
        == 403
    )
    assert not IngestBatch.objects.exists()


def test_api_batches_are_private(owner, meter, other_owner):  # type: ignore[no-untyped-def]
    api = token_client(owner)
    body = {
        "readings": [{"meter_serial": "NOPE", "timestamp": "2024-06-03T10:00", "energy": 1, "unit": "kWh"}]
    }
    batch_id = api.post(reverse("api-readings-batch"), body, format="json").json()["batch"]

    listing = api.get(reverse("api-ingest-batch-list")).json()
    assert [b["batch"] for b in listing["results"]] == [batch_id]
    assert api.get(reverse("api-ingest-batch-detail", args=[batch_id])).json()["rejected"] == 1
    quarantine = api.get(reverse("api-ingest-batch-quarantine", args=[batch_id])).json()["results"]
    assert [(q["row"], q["reason"], q["meter_serial"]) for q in quarantine] == [(1, "unknown_meter", "NOPE")]
    assert json.loads(quarantine[0]["original"])["meter_serial"] == "NOPE"

    other = token_client(other_owner)
    assert other.get(reverse("api-ingest-batch-list")).json()["results"] == []
    assert other.get(reverse("api-ingest-batch-detail", args=[batch_id])).status_code == 404
    assert other.get(reverse("api-ingest-batch-quarantine", args=[batch_id])).status_code == 404
    admin = token_client(make_user("registry_admin"))
    assert admin.get(reverse("api-ingest-batch-detail", args=[batch_id])).status_code == 200


# ---- import-readings command ---------------------------------------------------------------------------------


def write_csv(path, lines: list[str]):  # type: ignore[no-untyped-def]
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def test_import_readings_text_output(tmp_path, meter, other_meter):  # type: ignore[no-untyped-def]
    good, bad, by_reason = mixed_rows(meter.serial, "NO-SUCH-METER")
    path = write_csv(tmp_path / "export.csv", [*good, *bad, good[0]])
    out = io.StringIO()
    with translation.override("en"):
        call_command("import_readings", str(path), stdout=out)
        messages = {code: reason_message(code) for code in by_reason}
    text = out.getvalue()
    batch = IngestBatch.objects.get()
    assert batch.source == "cli" and batch.submitted_by is None
    assert f"batch #{batch.pk}" in text
    assert "accepted 3" in text and "identical duplicates 1" in text and "rejected 7" in text
    for code, message in messages.items():
        assert f"{code} ({by_reason[code]}): {message}" in text
    assert len(stored(meter)) == 3


def test_import_readings_json_output_for_one_and_several_files(tmp_path, meter, other_meter):  # type: ignore[no-untyped-def]
    # the command is a trusted system door: every meter is accepted
    a = write_csv(
        tmp_path / "a.csv",
        [f"{meter.serial},2024-06-05T10:00,60,1.5,,,,kWh,", f"{meter.serial},bad,60,1,,,,kWh,"],
    )
    b = write_csv(tmp_path / "b.csv", [f"{other_meter.serial},2024-06-05T10:00,60,2.5,,,,kWh,"])

    out = io.StringIO()
    call_command("import_readings", str(a), "--json", stdout=out)
    one = json.loads(out.getvalue())
    assert isinstance(one, dict)
    assert (one["rows"], one["accepted"], one["rejected"]) == (2, 1, 1)
    assert one["rejected_by_reason"] == {"unparseable_field": 1}
    assert one["rejected_reasons"][0]["message"] == reason_message("unparseable_field")
    assert one["batch"] == IngestBatch.objects.get(filename=str(a)).pk

    out = io.StringIO()
    call_command("import_readings", str(a), str(b), "--json", "--chunk-size", "1", stdout=out)
    several = json.loads(out.getvalue())
    assert [r["file"] for r in several] == [str(a), str(b)]
    assert [(r["accepted"], r["identical_duplicates"]) for r in several] == [(0, 1), (1, 0)]
    assert len(stored(other_meter)) == 1


def test_import_readings_missing_file_names_it_and_imports_nothing(tmp_path, meter):  # type: ignore[no-untyped-def]
    a = write_csv(tmp_path / "a.csv", [f"{meter.serial},2024-06-05T10:00,60,1.5,,,,kWh,"])
    missing = tmp_path / "missing.csv"
    with pytest.raises(CommandError, match="missing.csv"):
        call_command("import_readings", str(a), str(missing), stdout=io.StringIO())
    assert not IngestBatch.objects.exists()


def test_import_readings_rows_numbered_like_the_file(tmp_path, meter):  # type: ignore[no-untyped-def]
    rows = [f"{meter.serial},2024-06-05T{h:02d}:00,60,1,,,,kWh," for h in range(8, 12)]
    rows[2] = rows[2].replace(",1,,,,kWh,", ",x,,,,kWh,")
    call_command("import_readings", str(write_csv(tmp_path / "n.csv", rows)), stdout=io.StringIO())
    q = QuarantinedRow.objects.get()
    assert (q.row_number, q.field, q.raw) == (3, "energy", rows[2])
