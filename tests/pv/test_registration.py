"""Registration of PV systems: validation rules, the capacity limit parameter, serial uniqueness, owners and
consents, evidence, other-programme claims, who sees what, and meter replacement."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from lowcarbon.accounts.models import Role, RoleGrant, User
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.params import set_parameter
from lowcarbon.metering.models import Meter, MeterReplacement, Reading
from lowcarbon.metering.replacement import do_record_replacement
from lowcarbon.pv import access
from lowcarbon.pv.domain.registration import (
    FieldError,
    Registration,
    find_duplicate_serials,
    mask_person_name,
    validate_registration,
)
from lowcarbon.pv.models import Evidence, ManagementConsent, ProgrammeClaim, PVSystem
from lowcarbon.pv.services import (
    RegistrationInvalid,
    do_add_evidence,
    do_add_programme_claim,
    do_grant_consent,
    do_register_system,
    do_revoke_consent,
)
from tests.factories import make_org, make_system, make_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2025, 6, 1)
LIMIT = Decimal(6000)


def record(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "麦家屋顶光伏",
        "address": "小榄镇东区路18号",
        "community": "dongqu",
        "latitude": "22.67",
        "longitude": "113.26",
        "capacity_kwp": "5.2",
        "tilt_deg": "22",
        "azimuth_deg": "180",
        "grid_connection_date": "2024-03-01",
        "metering": "generation_meter",
        "meter_serial": "MTR-REG-0001",
    }
    base.update(over)
    return base


def fields_of(result: object) -> set[str]:
    assert isinstance(result, list), result
    return {e.field for e in result}


# --- pure validation -----------------------------------------------------------------------------------------


@pytest.mark.unit
def test_valid_record_becomes_exact_registration():
    r = validate_registration(
        record(capacity_kwp=5.1, latitude="22.671234"), capacity_limit_kwp=LIMIT, today=TODAY
    )
    assert isinstance(r, Registration)
    assert r.capacity_kwp == Decimal("5.100")
    assert r.latitude == Decimal("22.67123")
    assert r.grid_connection_date == date(2024, 3, 1)
    assert r.initial_register is None


@pytest.mark.unit
@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("name", "", "required"),
        ("capacity_kwp", "0", "capacity_not_positive"),
        ("capacity_kwp", "-3", "capacity_not_positive"),
        ("capacity_kwp", "6000.5", "capacity_above_limit"),
        ("capacity_kwp", "five", "invalid_number"),
        ("latitude", "23.10", "outside_area"),
        ("longitude", "112.9", "outside_area"),
        ("tilt_deg", "91", "out_of_range"),
        ("tilt_deg", "-1", "out_of_range"),
        ("azimuth_deg", "361", "out_of_range"),
        ("grid_connection_date", "2025-06-02", "date_in_future"),
        ("grid_connection_date", "2024-02-30", "invalid_date"),
        ("metering", "inverter", "invalid_choice"),
        ("meter_serial", "AB1", "invalid_serial"),
        ("meter_serial", "MTR 0001", "invalid_serial"),
        ("meter_serial", "", "required"),
        ("initial_register", "-1", "negative"),
    ],
)
def test_each_rule_names_its_field(field, value, code):
    result = validate_registration(record(**{field: value}), capacity_limit_kwp=LIMIT, today=TODAY)
    assert isinstance(result, list)
    assert [(e.field, e.code) for e in result] == [(field, code)]


@pytest.mark.unit
def test_all_errors_reported_at_once_and_limit_in_args():
    result = validate_registration(
        record(capacity_kwp="7000", tilt_deg="95", metering=""), capacity_limit_kwp=LIMIT, today=TODAY
    )
    assert fields_of(result) == {"capacity_kwp", "tilt_deg", "metering"}
    cap = next(e for e in result if e.field == "capacity_kwp")
    assert cap.args["limit"] == "6000"


@pytest.mark.unit
def test_boundaries_are_inclusive():
    r = validate_registration(
        record(capacity_kwp="6000", tilt_deg="90", azimuth_deg="0", grid_connection_date=TODAY),
        capacity_limit_kwp=LIMIT,
        today=TODAY,
    )
    assert isinstance(r, Registration)


@pytest.mark.unit
def test_unknown_community_refused_when_list_given():
    result = validate_registration(
        record(community="nowhere"), capacity_limit_kwp=LIMIT, today=TODAY, communities={"dongqu"}
    )
    assert result == [FieldError("community", "unknown_community", {"value": "nowhere"})]


@pytest.mark.unit
def test_programme_periods_must_be_ordered():
    claims = [
        {"programme": "gec", "period_start": "2024-01-01", "period_end": "2024-12-31"},
        {"programme": "ccer", "period_start": "2024-06-01", "period_end": "2024-05-01"},
        {"programme": "nope", "period_start": "x", "period_end": "2024-05-01"},
    ]
    result = validate_registration(record(programme_claims=claims), capacity_limit_kwp=LIMIT, today=TODAY)
    assert fields_of(result) == {
        "programme_claims.1.period_end",
        "programme_claims.2.programme",
        "programme_claims.2.period_start",
    }
    ok = validate_registration(record(programme_claims=claims[:1]), capacity_limit_kwp=LIMIT, today=TODAY)
    assert isinstance(ok, Registration)
    assert ok.programme_claims[0].period_end == date(2024, 12, 31)


@pytest.mark.unit
def test_dates_written_as_chinese_spreadsheets_do():
    for text in ("2024/3/1", "2024年3月1日", "2024-03-01 00:00:00", datetime(2024, 3, 1, 0, 0)):
        r = validate_registration(record(grid_connection_date=text), capacity_limit_kwp=LIMIT, today=TODAY)
        assert isinstance(r, Registration) and r.grid_connection_date == date(2024, 3, 1)


@pytest.mark.unit
def test_duplicate_serials_case_insensitive_and_masking():
    assert find_duplicate_serials([(2, "AB-01"), (3, "cd-02"), (4, "ab-01")]) == {4: "2"}
    assert mask_person_name("麦润标") == "麦**"


# --- service: one system --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_owner_registers_own_system_with_meter_and_claims():
    owner = make_user(Role.OWNER_HOUSEHOLD)
    claims = [
        {"programme": "gec", "period_start": "2024-03-01", "period_end": "2024-12-31", "reference": "GEC-1"}
    ]
    system = do_register_system(
        record(metering="bidirectional", initial_register="12.5", programme_claims=claims), actor=owner
    )
    assert system.code.startswith("PV-") and len(system.code) == 9 and system.code[3:].isdigit()
    assert system.owner_user == owner and system.owner_type == "household"
    meter = Meter.objects.get(subject_kind="pv_system", subject_id=system.pk)
    assert meter.serial == "MTR-REG-0001"
    assert meter.purpose == Meter.Purpose.PV_BIDIRECTIONAL
    assert meter.installed_at == datetime(2024, 3, 1, tzinfo=SHANGHAI)
    assert meter.initial_register == Decimal("12.5")
    assert list(system.programme_claims.values_list("programme", "reference")) == [("gec", "GEC-1")]
    assert access.can_view_system(owner, system)

    second = do_register_system(record(meter_serial="MTR-REG-0002"), actor=owner)
    assert int(second.code[3:]) == int(system.code[3:]) + 1
    assert Meter.objects.get(subject_id=second.pk).purpose == Meter.Purpose.PV_GENERATION


@pytest.mark.django_db
def test_capacity_limit_is_the_versioned_parameter():
    owner = make_user(Role.OWNER_HOUSEHOLD)
    with pytest.raises(RegistrationInvalid) as exc:
        do_register_system(record(capacity_kwp="7000"), actor=owner)
    assert [(p.field, p.code) for p in exc.value.problems] == [("capacity_kwp", "capacity_above_limit")]
    assert "6000" in exc.value.problems[0].message

    set_parameter("pv.capacity_limit_kwp", Decimal("8000"), timezone.localdate(), "test: raised limit")
    system = do_register_system(record(capacity_kwp="7000"), actor=owner)
    assert system.capacity_kwp == Decimal("7000")

    set_parameter("pv.capacity_limit_kwp", Decimal("10"), timezone.localdate(), "test: household cap")
    with pytest.raises(RegistrationInvalid) as exc:
        do_register_system(record(capacity_kwp="12", meter_serial="MTR-REG-0099"), actor=owner)
    assert "10" in exc.value.problems[0].message


@pytest.mark.django_db
def test_serial_used_anywhere_is_refused_and_nothing_saved():
    owner = make_user(Role.OWNER_HOUSEHOLD)
    make_system(owner, serial="MTR-TAKEN-01")
    before = PVSystem.objects.count()
    with pytest.raises(DomainError) as exc:
        do_register_system(record(meter_serial="mtr-taken-01"), actor=owner)
    assert "mtr-taken-01" in exc.value.message
    assert exc.value.field == "meter_serial"
    assert PVSystem.objects.count() == before


@pytest.mark.django_db
def test_owner_may_not_register_for_a_household_nor_a_stranger_at_all():
    owner = make_user(Role.OWNER_HOUSEHOLD)
    with pytest.raises(RegistrationInvalid) as exc:
        do_register_system(
            record(owner_kind="household", owner_real_name="张三", owner_phone="13800138000"), actor=owner
        )
    assert exc.value.problems[0].field == "owner_kind"
    buyer = make_user(Role.BUYER)
    with pytest.raises(DomainError):
        do_register_system(record(), actor=buyer)


@pytest.mark.django_db
def test_enterprise_owner_registers_for_its_organisation_only():
    org = make_org("enterprise")
    other = make_org("enterprise")
    rep = make_user(Role.OWNER_ENTERPRISE, org=org)
    system = do_register_system(record(owner_kind="organisation", owner_org=org.pk), actor=rep)
    assert system.owner_org == org and system.owner_type == "enterprise"
    with pytest.raises(RegistrationInvalid) as exc:
        do_register_system(
            record(owner_kind="organisation", owner_org=other.pk, meter_serial="MTR-X-9"), actor=rep
        )
    assert exc.value.problems[0].field == "owner_org"


@pytest.mark.django_db
def test_aggregator_registers_household_with_consent():
    agg = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=agg)
    data = record(owner_kind="household", owner_real_name="麦润标", owner_phone="+86 138 0013 8000")

    with pytest.raises(RegistrationInvalid) as exc:
        do_register_system(data, actor=agent)
    assert [p.field for p in exc.value.problems] == ["consent_document"]

    system = do_register_system({**data, "consent_document": "XL-AUTH-2025-001"}, actor=agent)
    owner = system.owner_user
    assert owner.real_name == "麦润标" and owner.phone == "13800138000"
    assert not owner.has_usable_password()
    assert RoleGrant.objects.filter(user=owner, role=Role.OWNER_HOUSEHOLD).exists()
    consent = ManagementConsent.objects.get(system=system)
    assert consent.aggregator == agg and consent.document == "XL-AUTH-2025-001" and consent.revoked_at is None
    assert consent.granted_by == owner
    assert access.can_manage_system(agent, system)

    # the same phone is the same person; a different name on that phone is refused
    again = do_register_system(
        {**data, "consent_document": "XL-AUTH-2025-002", "meter_serial": "MTR-REG-0003"}, actor=agent
    )
    assert again.owner_user == owner
    with pytest.raises(RegistrationInvalid) as exc:
        do_register_system(
            {**data, "owner_real_name": "李四", "consent_document": "D", "meter_serial": "MTR-REG-0004"},
            actor=agent,
        )
    assert exc.value.problems[0].code == "owner_name_mismatch"


@pytest.mark.django_db
def test_evidence_stored_under_random_name(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    owner = make_user(Role.OWNER_HOUSEHOLD)
    photo = SimpleUploadedFile("电表 照片.jpg", b"\xff\xd8\xff\xe0fakejpeg", content_type="image/jpeg")
    system = do_register_system(record(), actor=owner, evidence=[("meter_photo", photo)])
    ev = Evidence.objects.get(system=system)
    assert ev.kind == "meter_photo" and ev.original_name == "电表 照片.jpg"
    assert "照片" not in ev.file.name and ev.file.name.endswith(".jpg")

    with pytest.raises(RegistrationInvalid) as exc:
        do_add_evidence(system, "ownership", SimpleUploadedFile("x.html", b"<script>"), owner)
    assert exc.value.problems[0].code == "evidence_type"
    stranger = make_user(Role.OWNER_HOUSEHOLD)
    with pytest.raises(DomainError):
        do_add_evidence(system, "ownership", SimpleUploadedFile("deed.pdf", b"%PDF-1.4"), stranger)
    assert Evidence.objects.filter(system=system).count() == 1


@pytest.mark.django_db
def test_programme_claim_overlap_refused():
    owner = make_user(Role.OWNER_HOUSEHOLD)
    system = make_system(owner)
    do_add_programme_claim(
        system, programme="gec", period_start=date(2024, 1, 1), period_end=date(2024, 12, 31), actor=owner
    )
    with pytest.raises(DomainError) as exc:
        do_add_programme_claim(
            system, programme="gec", period_start=date(2024, 6, 1), period_end=date(2025, 5, 31), actor=owner
        )
    assert exc.value.code == "claim_overlap"
    do_add_programme_claim(
        system, programme="ccer", period_start=date(2024, 6, 1), period_end=date(2025, 5, 31), actor=owner
    )
    assert ProgrammeClaim.objects.filter(system=system).count() == 2


# --- who sees what -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_visibility_owner_aggregator_reviewer():
    a = make_user(Role.OWNER_HOUSEHOLD)
    b = make_user(Role.OWNER_HOUSEHOLD)
    sys_a = make_system(a)
    sys_b = make_system(b)
    agg = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=agg)
    reviewer = make_user(Role.REVIEWER_CITY)

    assert list(access.visible_systems(a)) == [sys_a]
    assert not access.can_view_system(a, sys_b)
    assert list(access.visible_systems(agent)) == []

    consent = do_grant_consent(sys_b, aggregator=agg, document="AUTH-7", actor=b)
    assert list(access.visible_systems(agent)) == [sys_b]
    with pytest.raises(DomainError):
        do_grant_consent(sys_b, aggregator=agg, document="AUTH-8", actor=b)  # already active
    with pytest.raises(DomainError):
        do_grant_consent(sys_a, aggregator=agg, document="AUTH-9", actor=b)  # not b's system

    do_revoke_consent(consent, actor=b)
    assert list(access.visible_systems(agent)) == []
    assert not access.can_manage_system(agent, sys_b)
    with pytest.raises(DomainError):
        do_revoke_consent(consent, actor=b)

    assert set(access.visible_systems(reviewer)) == {sys_a, sys_b}
    assert not access.can_manage_system(reviewer, sys_a)


# --- meter replacement ---------------------------------------------------------------------------------------


def _meter(system: PVSystem) -> Meter:
    m = Meter.objects.get(subject_kind="pv_system", subject_id=system.pk)
    m.installed_at = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    m.save()
    return m


@pytest.mark.django_db
def test_replacement_creates_new_meter_and_closes_old():
    owner = make_user(Role.OWNER_HOUSEHOLD)
    system = make_system(owner, metering="bidirectional")
    old = _meter(system)
    when = datetime(2025, 3, 10, 14, 0, tzinfo=SHANGHAI)
    rep = do_record_replacement(
        old,
        new_serial="MTR-NEW-0001",
        replaced_at=when,
        old_final_reading=Decimal("4321.5"),
        new_initial_reading=Decimal("0.2"),
        work_order="WO-88",
        actor=owner,
    )
    old.refresh_from_db()
    assert old.removed_at == when
    new = rep.new_meter
    assert (new.serial, new.purpose, new.subject_kind, new.subject_id) == (
        "MTR-NEW-0001",
        "pv_bidirectional",
        "pv_system",
        system.pk,
    )
    assert new.installed_at == when and new.initial_register == Decimal("0.2")
    assert (
        rep.old_final_reading == Decimal("4321.5") and rep.work_order == "WO-88" and rep.recorded_by == owner
    )

    with pytest.raises(DomainError) as exc:
        do_record_replacement(
            old,
            new_serial="MTR-NEW-0002",
            replaced_at=when,
            old_final_reading=Decimal(5000),
            new_initial_reading=Decimal(0),
            actor=owner,
        )
    assert exc.value.code == "meter_already_replaced"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"new_serial": "EXISTING-1"}, "serial_in_use"),
        ({"new_serial": "no"}, "invalid_serial"),
        ({"replaced_at": timezone.now() + timedelta(days=2)}, "replaced_at_in_future"),
        ({"replaced_at": datetime(2023, 12, 31, tzinfo=SHANGHAI)}, "replaced_before_installation"),
        ({"old_final_reading": Decimal("99")}, "final_below_last_reading"),
        ({"replaced_at": datetime(2024, 6, 1, 10, tzinfo=SHANGHAI)}, "readings_after_replacement"),
    ],
)
def test_replacement_refusals_change_nothing(kwargs, code):
    owner = make_user(Role.OWNER_HOUSEHOLD)
    system = make_system(owner)
    make_system(owner, serial="EXISTING-1")
    old = _meter(system)
    Reading.objects.create(
        meter_id=old.pk,
        ts=datetime(2024, 6, 1, 12, tzinfo=SHANGHAI),
        interval_s=3600,
        energy=Decimal(2),
        cumulative=Decimal(100),
    )
    args = {
        "new_serial": "MTR-NEW-0003",
        "replaced_at": datetime(2024, 7, 1, tzinfo=SHANGHAI),
        "old_final_reading": Decimal(150),
        "new_initial_reading": Decimal(0),
        "work_order": "",
        "actor": owner,
    }
    args.update(kwargs)
    meters_before = Meter.objects.count()
    with pytest.raises(DomainError) as exc:
        do_record_replacement(old, **args)
    assert exc.value.code == code
    old.refresh_from_db()
    assert old.removed_at is None
    assert Meter.objects.count() == meters_before
    assert not MeterReplacement.objects.exists()


@pytest.mark.django_db
def test_household_owner_created_without_usable_password_cannot_log_in(client):
    agg = make_org("aggregator")
    agent = make_user(Role.AGGREGATOR, org=agg)
    system = do_register_system(
        record(
            owner_kind="household", owner_real_name="王五", owner_phone="13911112222", consent_document="A-1"
        ),
        actor=agent,
    )
    owner = User.objects.get(pk=system.owner_user_id)
    assert not client.login(username=owner.username, password="")
