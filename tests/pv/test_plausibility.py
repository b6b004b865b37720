"""Plausibility checks of PV generation: clear-sky ceiling and specific-yield bands (domain.md §4.2, §4.4, §4.6)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given, settings
from hypothesis import strategies as st

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.params import set_parameter
from lowcarbon.metering.models import Meter, MonthlyRollup
from lowcarbon.pv.domain import plausibility as dp
from lowcarbon.pv.domain.plausibility import Bands, Code, Severity, Threshold
from lowcarbon.pv.models import ClearSkyProfile, PlausibilityFlag
from lowcarbon.pv.plausibility import (
    clear_sky_monthly_bounds,
    do_check_plausibility,
    do_clear_flag,
    excluded_months,
)
from tests.factories import make_system, make_user

D = Decimal

BANDS = Bands(
    clear_sky_margin=Threshold("pv.clear_sky_margin", D("1.1"), 1),
    monthly_yield_warn=Threshold("pv.monthly_yield_warn", D("160"), 1),
    monthly_yield_reject=Threshold("pv.monthly_yield_reject", D("200"), 1),
    annual_yield_warn_low=Threshold("pv.annual_yield_warn_low", D("700"), 1),
    annual_yield_warn_high=Threshold("pv.annual_yield_warn_high", D("1300"), 1),
    annual_yield_reject=Threshold("pv.annual_yield_reject", D("1500"), 2),
)
#: an even clear-sky yield of 150 kWh/kWp in every month, enough for domain tests
CLEAR_SKY = {date(y, m, 1): D("150") for y in (2024, 2025) for m in range(1, 13)}


def year_of(kwh: str, year: int = 2025) -> dict[date, Decimal]:
    return {date(year, m, 1): D(kwh) for m in range(1, 13)}


def codes(findings: list[dp.Finding]) -> set[tuple[str, date]]:
    return {(f.code.value, f.month) for f in findings}


class TestDomain:
    pytestmark = pytest.mark.unit

    def test_normal_year_has_no_findings(self):
        # 5 kWp at 90 kWh/kWp a month = 1,080 kWh/kWp a year, inside every band
        assert dp.check_system(year_of("450"), D("5"), CLEAR_SKY, BANDS) == []

    def test_month_above_clear_sky_is_rejected_and_names_the_limit(self):
        gen = year_of("450")
        gen[date(2025, 7, 1)] = D("826")  # limit = 1.1 × 150 × 5 = 825 kWh
        [f] = [f for f in dp.check_system(gen, D("5"), CLEAR_SKY, BANDS) if f.code == Code.ABOVE_CLEAR_SKY]
        assert (f.severity, f.month, f.value, f.limit, f.unit) == (
            Severity.REJECT,
            date(2025, 7, 1),
            D("826.0000"),
            D("825.0000"),
            "kWh",
        )
        assert f.parameter_versions == {"pv.clear_sky_margin": 1}

    def test_generation_exactly_at_the_clear_sky_limit_passes(self):
        # limit 1.1 × 100 × 5 = 550 kWh (110 kWh/kWp, inside the monthly band)
        assert dp.check_month(date(2025, 7, 1), D("550"), D("5"), D("100"), BANDS) == []
        assert [f.code for f in dp.check_month(date(2025, 7, 1), D("550.0001"), D("5"), D("100"), BANDS)] == [
            Code.ABOVE_CLEAR_SKY
        ]

    def test_month_without_a_bound_skips_only_the_ceiling(self):
        found = dp.check_month(date(2030, 7, 1), D("1005"), D("5"), None, BANDS)
        assert [f.code for f in found] == [Code.MONTHLY_YIELD_REJECT]

    def test_monthly_band_warns_above_160_and_rejects_above_200(self):
        warn = dp.check_month(date(2025, 5, 1), D("805"), D("5"), D("500"), BANDS)  # 161 kWh/kWp
        assert [(f.code, f.severity, f.value, f.limit) for f in warn] == [
            (Code.MONTHLY_YIELD_HIGH, Severity.WARN, D("161.0000"), D("160.0000"))
        ]
        reject = dp.check_month(date(2025, 5, 1), D("1005"), D("5"), D("500"), BANDS)  # 201 kWh/kWp
        assert [(f.code, f.severity) for f in reject] == [(Code.MONTHLY_YIELD_REJECT, Severity.REJECT)]
        assert dp.check_month(date(2025, 5, 1), D("800"), D("5"), D("500"), BANDS) == []

    @pytest.mark.parametrize(
        ("monthly", "code", "severity", "limit", "versions"),
        [
            (
                "200",
                Code.ANNUAL_YIELD_LOW,
                Severity.WARN,
                "700",
                {"pv.annual_yield_warn_low": 1},
            ),  # 480 kWh/kWp
            ("575", Code.ANNUAL_YIELD_HIGH, Severity.WARN, "1300", {"pv.annual_yield_warn_high": 1}),  # 1,380
            (
                "650",
                Code.ANNUAL_YIELD_REJECT,
                Severity.REJECT,
                "1500",
                {"pv.annual_yield_reject": 2},
            ),  # 1,560
        ],
    )
    def test_annual_bands_on_december_of_a_complete_year(self, monthly, code, severity, limit, versions):
        clear_sky = {m: D("500") for m in CLEAR_SKY}
        annual = [
            f
            for f in dp.check_system(year_of(monthly), D("5"), clear_sky, BANDS)
            if f.code.startswith("annual")
        ]
        assert [f.code for f in annual] == [code]  # one annual finding, the strongest band
        f = annual[0]
        assert (f.month, f.severity, f.limit, f.value) == (
            date(2025, 12, 1),
            severity,
            D(limit).quantize(D("0.0001")),
            (D(monthly) * 12 / 5).quantize(D("0.0001")),
        )
        assert f.parameter_versions == versions

    def test_incomplete_year_gets_no_annual_finding(self):
        gen = year_of("200")
        del gen[date(2025, 1, 1)]
        assert not any(
            f.code.value.startswith("annual") for f in dp.check_system(gen, D("5"), CLEAR_SKY, BANDS)
        )

    def test_zero_and_missing_months_inside_the_data_range_are_warned(self):
        gen = {
            date(2025, 1, 1): D("400"),
            date(2025, 3, 1): D("400"),
            date(2025, 4, 1): D("0"),
            date(2025, 5, 1): D("400"),
        }
        zero = [f for f in dp.check_system(gen, D("5"), CLEAR_SKY, BANDS) if f.code == Code.ZERO_MONTH]
        assert [(f.month, f.severity, f.value) for f in zero] == [
            (date(2025, 2, 1), Severity.WARN, D("0.0000")),
            (date(2025, 4, 1), Severity.WARN, D("0.0000")),
        ]

    def test_zero_months_at_the_edges_of_the_range_count_too_but_not_beyond(self):
        gen = {date(2025, 6, 1): D("0"), date(2025, 7, 1): D("400")}
        assert codes(dp.check_system(gen, D("5"), CLEAR_SKY, BANDS)) == {("zero_month", date(2025, 6, 1))}

    def test_bad_input_is_refused(self):
        with pytest.raises(ValueError):
            dp.check_system(year_of("1"), D("0"), CLEAR_SKY, BANDS)
        with pytest.raises(ValueError):
            dp.check_system({date(2025, 1, 15): D("1")}, D("5"), CLEAR_SKY, BANDS)
        with pytest.raises(ValueError):
            dp.check_system({date(2025, 1, 1): D("-1")}, D("5"), CLEAR_SKY, BANDS)

    def test_affected_months_cover_the_year_and_the_gap_to_neighbouring_data(self):
        data = {date(2024, 10, 1), date(2025, 3, 1)}
        got = dp.affected_months({date(2025, 3, 1)}, data)
        assert date(2024, 11, 1) in got and date(2024, 12, 1) in got  # gap back to October 2024
        assert date(2025, 12, 1) in got  # December carries the annual finding
        assert date(2024, 10, 1) in got and date(2024, 9, 1) not in got

    # Scaling generation down can only remove reject findings (the bounds are upper limits).
    @settings(max_examples=150, deadline=None)
    @given(
        monthly=st.lists(
            st.decimals(min_value=0, max_value=2000, places=2, allow_nan=False, allow_infinity=False),
            min_size=1,
            max_size=24,
        ),
        factor=st.decimals(min_value=D("0.01"), max_value=1, places=2),
        capacity=st.decimals(min_value=D("0.5"), max_value=50, places=1),
    )
    def test_scaling_generation_down_never_adds_a_reject(self, monthly, factor, capacity):
        months = dp.months_between(date(2024, 1, 1), date(2025, 12, 1))[: len(monthly)]
        gen = dict(zip(months, monthly, strict=True))
        scaled = {m: v * factor for m, v in gen.items()}

        def rejects(g: dict[date, Decimal]) -> set[tuple[str, date]]:
            return codes(
                [f for f in dp.check_system(g, capacity, CLEAR_SKY, BANDS) if f.severity == Severity.REJECT]
            )

        assert rejects(scaled) <= rejects(gen)

    @settings(max_examples=100, deadline=None)
    @given(
        monthly=st.lists(st.decimals(min_value=1, max_value=300, places=1), min_size=12, max_size=12),
        k=st.integers(min_value=1, max_value=20),
    )
    def test_findings_depend_on_specific_yield_not_on_system_size(self, monthly, k):
        gen = dict(zip(year_of("0"), monthly, strict=True))
        one = dp.check_system(gen, D(1), CLEAR_SKY, BANDS)
        big = dp.check_system({m: v * k for m, v in gen.items()}, D(k), CLEAR_SKY, BANDS)
        assert [(f.code, f.month, f.severity) for f in one] == [(f.code, f.month, f.severity) for f in big]


# --- service and command (database) ---------------------------------------------------------------------------


def meter_of(system) -> Meter:
    return Meter.objects.get(subject_kind="pv_system", subject_id=system.pk)


def put_month(system, month: date, kwh: str) -> None:
    MonthlyRollup.objects.update_or_create(
        meter_id=meter_of(system).pk,
        month=month,
        defaults={"energy": D(kwh), "n_readings": 720, "covered_s": 2592000},
    )


def put_year(system, kwh: str, year: int = 2025) -> None:
    for m in range(1, 13):
        put_month(system, date(year, m, 1), kwh)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def system(db):
    return make_system(make_user("owner_household"), capacity_kwp="5", tilt="22", azimuth="180")


@pytest.fixture
def reviewer(db):
    return make_user("reviewer_city")


def flag(system, month: date, code: str) -> PlausibilityFlag:
    return PlausibilityFlag.objects.get(system=system, month=month, code=code)


@pytest.mark.integration
@pytest.mark.django_db
class TestService:
    def test_clear_sky_bounds_of_a_5_kwp_system_and_the_cache(self, system):
        bounds = clear_sky_monthly_bounds([system], 2025)[system.pk]
        assert len(bounds) == 12
        assert D(5 * 1650) <= sum(bounds) <= D(5 * 1950)
        [profile] = ClearSkyProfile.objects.all()
        assert (profile.lat, profile.lon, profile.tilt, profile.azimuth, profile.year) == (
            D("22.65"),
            D("113.25"),
            D("22.0"),
            D("180.0"),
            2025,
        )
        assert "pvlib" in profile.model_version
        # a second system at the same rounded place and orientation reuses the cached profile
        other = make_system(make_user("owner_household"), capacity_kwp="10", tilt="22", azimuth="180")
        profile.monthly_kwh_per_kwp = ["100"] * 12
        profile.save()
        again = clear_sky_monthly_bounds([system, other], 2025)
        assert ClearSkyProfile.objects.count() == 1
        assert again[other.pk] == [D("1000.0000")] * 12

    def test_month_above_clear_sky_gets_a_reject_flag_naming_the_limit(self, system):
        put_year(system, "450")
        put_month(system, date(2025, 7, 1), "1100")
        counts = do_check_plausibility([system.pk])
        bound = clear_sky_monthly_bounds([system], 2025)[system.pk][6]
        f = flag(system, date(2025, 7, 1), "above_clear_sky")
        assert (f.severity, f.value, f.limit, f.is_open) == ("reject", D("1100"), D("1.1") * bound, True)
        assert f.parameter_versions["pv.clear_sky_margin"] == 1
        assert f.parameter_versions["pv.performance_ratio_clear_sky"] == 1
        assert "pvlib" in f.parameter_versions["clear_sky_model"]
        # 220 kWh/kWp is also above the monthly reject line
        assert flag(system, date(2025, 7, 1), "monthly_yield_reject").limit == D("200")
        assert counts["created"] == 2 and counts["open_reject"] == 2 and counts["systems"] == 1
        assert excluded_months([system.pk]) == {(system.pk, date(2025, 7, 1))}

    def test_rerun_without_changes_changes_nothing(self, system):
        put_year(system, "450")
        put_month(system, date(2025, 7, 1), "1100")
        do_check_plausibility([system.pk])
        counts = do_check_plausibility([system.pk])
        assert (counts["created"], counts["updated"], counts["deleted"], counts["unchanged"]) == (0, 0, 0, 2)

    def test_annual_warning_sits_on_december(self, system):
        put_year(system, "200")  # 480 kWh/kWp a year
        do_check_plausibility([system.pk])
        f = flag(system, date(2025, 12, 1), "annual_yield_low")
        assert (f.severity, f.value, f.limit) == ("warn", D("480"), D("700"))
        assert excluded_months([system.pk]) == set()  # warnings do not exclude a month

    def test_missing_month_inside_the_data_is_a_zero_month_warning(self, system):
        put_month(system, date(2025, 1, 1), "400")
        put_month(system, date(2025, 3, 1), "400")
        do_check_plausibility([system.pk])
        assert flag(system, date(2025, 2, 1), "zero_month").severity == "warn"

    def test_clearing_needs_a_reviewer_and_a_note(self, system, reviewer):
        put_month(system, date(2025, 7, 1), "1100")
        do_check_plausibility([system.pk])
        f = flag(system, date(2025, 7, 1), "above_clear_sky")

        with pytest.raises(DomainError) as owner_err:
            do_clear_flag(f.pk, system.owner_user, "my meter is fine")
        assert owner_err.value.code == "not_reviewer"
        with pytest.raises(DomainError) as note_err:
            do_clear_flag(f.pk, reviewer, "   ")
        assert (note_err.value.code, note_err.value.field) == ("note_required", "note")
        f.refresh_from_db()
        assert f.is_open and f.clear_note == ""

        cleared = do_clear_flag(f.pk, reviewer, " Inverter log confirms a sunny July; meter calibrated. ")
        cleared.refresh_from_db()
        assert (cleared.is_open, cleared.cleared_by, cleared.clear_note) == (
            False,
            reviewer,
            "Inverter log confirms a sunny July; meter calibrated.",
        )
        with pytest.raises(DomainError) as again:
            do_clear_flag(f.pk, reviewer, "twice")
        assert again.value.code == "flag_already_cleared"
        with pytest.raises(DomainError) as missing:
            do_clear_flag(999999, reviewer, "note")
        assert missing.value.code == "flag_not_found"

    def test_registry_admin_may_clear(self, system):
        put_month(system, date(2025, 7, 1), "1100")
        do_check_plausibility([system.pk])
        f = flag(system, date(2025, 7, 1), "monthly_yield_reject")
        assert not do_clear_flag(f.pk, make_user("registry_admin"), "checked on site").is_open

    def test_excluded_months_follow_open_reject_flags(self, system, reviewer):
        put_month(system, date(2025, 6, 1), "450")
        put_month(system, date(2025, 7, 1), "1100")
        do_check_plausibility([system.pk])
        assert excluded_months([system.pk]) == {(system.pk, date(2025, 7, 1))}
        do_clear_flag(flag(system, date(2025, 7, 1), "above_clear_sky").pk, reviewer, "verified")
        assert excluded_months([system.pk]) == {
            (system.pk, date(2025, 7, 1))
        }  # the band reject is still open
        do_clear_flag(flag(system, date(2025, 7, 1), "monthly_yield_reject").pk, reviewer, "verified")
        assert excluded_months([system.pk]) == set()

    def test_cleared_flag_stays_cleared_until_its_value_changes(self, system, reviewer):
        put_month(system, date(2025, 7, 1), "1100")
        do_check_plausibility([system.pk])
        f = flag(system, date(2025, 7, 1), "above_clear_sky")
        do_clear_flag(f.pk, reviewer, "verified")

        do_check_plausibility([system.pk])
        assert not flag(system, date(2025, 7, 1), "above_clear_sky").is_open

        put_month(system, date(2025, 7, 1), "1150")
        counts = do_check_plausibility([system.pk])
        f = flag(system, date(2025, 7, 1), "above_clear_sky")
        assert f.is_open and f.cleared_by is None and f.value == D("1150")
        assert (counts["reopened"], counts["updated"]) == (1, 1)  # the band reject was still open
        assert (system.pk, date(2025, 7, 1)) in excluded_months([system.pk])

    def test_corrected_data_removes_open_flags_but_keeps_cleared_ones(self, system, reviewer):
        put_month(system, date(2025, 7, 1), "1100")
        do_check_plausibility([system.pk])
        do_clear_flag(flag(system, date(2025, 7, 1), "above_clear_sky").pk, reviewer, "verified")
        put_month(system, date(2025, 7, 1), "500")
        counts = do_check_plausibility([system.pk])
        assert counts["deleted"] == 1
        assert not PlausibilityFlag.objects.filter(code="monthly_yield_reject").exists()
        assert not flag(system, date(2025, 7, 1), "above_clear_sky").is_open  # the review record stays

    def test_month_scope_leaves_other_months_alone(self, system):
        put_year(system, "450")
        stale = PlausibilityFlag.objects.create(
            system=system, month=date(2023, 5, 1), code="zero_month", severity="warn", value=0, limit=0
        )
        do_check_plausibility([system.pk], months={date(2025, 7, 1)})
        assert PlausibilityFlag.objects.filter(pk=stale.pk).exists()
        do_check_plausibility([system.pk])
        assert not PlausibilityFlag.objects.filter(pk=stale.pk).exists()

    def test_new_parameter_version_is_recorded_on_the_flag(self, system):
        put_month(system, date(2025, 5, 1), "850")  # 170 kWh/kWp
        do_check_plausibility([system.pk])
        assert flag(system, date(2025, 5, 1), "monthly_yield_high").parameter_versions == {
            "pv.monthly_yield_warn": 1
        }
        set_parameter("pv.monthly_yield_warn", D("165"), date(2020, 1, 1), "tightened after review")
        counts = do_check_plausibility([system.pk])
        f = flag(system, date(2025, 5, 1), "monthly_yield_high")
        assert (f.limit, f.parameter_versions, counts["updated"]) == (
            D("165"),
            {"pv.monthly_yield_warn": 2},
            1,
        )

    def test_command_prints_counts(self, system):
        put_month(system, date(2025, 7, 1), "1100")
        out = StringIO()
        call_command("check_plausibility", "--system", system.code, "--json", stdout=out)
        counts = json.loads(out.getvalue())
        assert counts["systems"] == 1 and counts["open_reject"] == 2
        text = StringIO()
        call_command("check_plausibility", "--system", system.code, stdout=text)
        assert ": 2" in text.getvalue()
        with pytest.raises(CommandError):
            call_command("check_plausibility", "--system", "PV-NOPE")
