"""Clear-sky upper bound of PV generation (domain.md §4.4), computed offline with pvlib."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pvlib
import pytest

from lowcarbon.pv.domain import physics

pytestmark = pytest.mark.unit

D = Decimal
EFFICIENCY = D("0.86")  # pv.performance_ratio_clear_sky v1
XIAOLAN = (D("22.67"), D("113.25"))


@pytest.fixture(scope="module")
def xiaolan_south_22() -> physics.ClearSkyYield:
    return physics.clear_sky_yield(*XIAOLAN, D("22"), D("180"), 2025, EFFICIENCY)


def test_zhongshan_south_22_annual_clear_sky_yield_in_expected_range(xiaolan_south_22):
    # domain.md §4.4 measured 1,818 kWh/kWp for a south-facing 22° system in Zhongshan
    annual = xiaolan_south_22.annual_kwh_per_kwp
    assert D(1650) <= annual <= D(1950)
    assert len(xiaolan_south_22.monthly_kwh_per_kwp) == 12
    assert all(D(100) < m < D(200) for m in xiaolan_south_22.monthly_kwh_per_kwp)


def test_five_kwp_system_bound_is_five_times_the_yield(xiaolan_south_22):
    bound = physics.scale_yield(xiaolan_south_22, D("5"))
    assert D(5 * 1650) <= bound.annual_kwh <= D(5 * 1950)
    assert bound.monthly_kwh == tuple(v * 5 for v in xiaolan_south_22.monthly_kwh_per_kwp)
    assert bound.max_daily_kwh == xiaolan_south_22.max_daily_kwh_per_kwp * 5


def test_reproduces_the_measured_reference_run():
    # domain.md §4.4: 22.52 N, 113.38 E, 2025, tilt 22°, south, losses 14.08 % → 1,818 kWh/kWp
    efficiency = D(1) - D(repr(pvlib.pvsystem.pvwatts_losses())) / 100
    y = physics.clear_sky_yield(
        D("22.52"), D("113.38"), D("22"), D("180"), 2025, efficiency.quantize(D("0.000001"))
    )
    assert abs(y.annual_kwh_per_kwp - D(1818)) <= D(1818) * D("0.005")


def test_largest_clear_day_is_below_the_daily_reject_line(xiaolan_south_22):
    # domain.md §4.2: daily reject > 7.5 kWh/kWp, Guangdong clear-sky max ≈ 6.5
    assert D(4) < xiaolan_south_22.max_daily_kwh_per_kwp < D("7.5")
    # a clear day cannot give more than a month divided by its days would suggest by a wide margin
    assert xiaolan_south_22.max_daily_kwh_per_kwp * 31 > max(xiaolan_south_22.monthly_kwh_per_kwp)


def _reference_pipeline(lat: float, lon: float, tilt: float, azimuth: float, year: int) -> pd.Series:
    """The same chain written the plain pvlib way, one orientation at a time, as an independent check."""
    loc = pvlib.location.Location(lat, lon, tz="Asia/Shanghai")
    starts = pd.date_range(
        f"{year}-01-01", f"{year + 1}-01-01", freq="1h", inclusive="left", tz="Asia/Shanghai"
    )
    times = starts + pd.Timedelta(minutes=30)
    sp = loc.get_solarposition(times)
    cs = loc.get_clearsky(times, model="ineichen", solar_position=sp)
    poa = pvlib.irradiance.get_total_irradiance(
        tilt,
        azimuth,
        sp["apparent_zenith"],
        sp["azimuth"],
        cs["dni"],
        cs["ghi"],
        cs["dhi"],
        dni_extra=pvlib.irradiance.get_extra_radiation(times),
        model="haydavies",
    )
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    tc = pvlib.temperature.sapm_cell(poa["poa_global"], 28, 1, **params)
    ac = pvlib.pvsystem.pvwatts_dc(poa["poa_global"], tc, 1.0, -0.0037) * 0.96 * float(EFFICIENCY)
    ac.index = starts
    return ac.groupby(ac.index.month).sum()


@pytest.mark.parametrize(("tilt", "azimuth"), [(22, 180), (30, 90), (10, 270), (5, 135)])
def test_grouped_computation_matches_plain_pvlib_chain(tilt, azimuth):
    key = physics.orientation_key(D("22.65"), D("113.25"), D(tilt), D(azimuth))
    y = physics.clear_sky_yields([key], 2025, EFFICIENCY)[key]
    ref = _reference_pipeline(22.65, 113.25, tilt, azimuth, 2025)
    for got, want in zip(y.monthly_kwh_per_kwp, ref.to_list(), strict=True):
        assert abs(float(got) - want) <= want * 0.0001


def test_south_facing_beats_east_and_west_and_spread_matches_reference():
    keys = [
        physics.orientation_key(*XIAOLAN, D(t), D(a))
        for t in (5, 10, 15, 20, 25, 30)
        for a in range(120, 241, 30)
    ]
    yields = physics.clear_sky_yields(keys, 2025, EFFICIENCY)
    annual = {(k.tilt, k.azimuth): y.annual_kwh_per_kwp for k, y in yields.items()}
    # domain.md §4.4: tilts 5–30°, azimuths 120–240° give 1,678–1,818 kWh/kWp (at losses 14.08 %)
    assert D(1600) < min(annual.values()) and max(annual.values()) < D(1850)
    assert annual[(D(20), D(180))] > annual[(D(20), D(120))]
    assert annual[(D(20), D(180))] > annual[(D(20), D(240))]


def test_lower_efficiency_lowers_the_bound_proportionally(xiaolan_south_22):
    lower = physics.clear_sky_yield(*XIAOLAN, D("22"), D("180"), 2025, D("0.43"))
    assert abs(lower.annual_kwh_per_kwp * 2 - xiaolan_south_22.annual_kwh_per_kwp) < D("0.02")


def test_leap_year_has_twelve_months_and_more_february_yield():
    key = physics.orientation_key(*XIAOLAN, D("22"), D("180"))
    y2024 = physics.clear_sky_yields([key], 2024, EFFICIENCY)[key]
    y2025 = physics.clear_sky_yields([key], 2025, EFFICIENCY)[key]
    assert len(y2024.monthly_kwh_per_kwp) == 12
    assert y2024.monthly_kwh_per_kwp[1] > y2025.monthly_kwh_per_kwp[1]  # 29 February days


def test_nearby_systems_share_a_group_and_scale_by_capacity():
    specs = [
        physics.SystemSpec(1, D("22.6712"), D("113.2488"), D("22"), D("180"), D("5")),
        physics.SystemSpec(2, D("22.6601"), D("113.2611"), D("22.3"), D("179.6"), D("10")),
        physics.SystemSpec(3, D("22.6650"), D("113.2500"), D("30"), D("90"), D("5")),
    ]
    keys = {physics.orientation_key(s.latitude, s.longitude, s.tilt, s.azimuth) for s in specs}
    assert len(keys) == 2
    bounds = physics.clear_sky_bounds(specs, 2025, EFFICIENCY)
    assert bounds[2].monthly_kwh == tuple(v * 2 for v in bounds[1].monthly_kwh)
    assert bounds[3].annual_kwh < bounds[1].annual_kwh  # east-facing 30° gets less than south 22°


def test_orientation_key_rounds_to_the_grouping_grid():
    key = physics.orientation_key(D("22.674"), D("113.226"), D("22.5"), D("359.6"))
    assert key == physics.Orientation(D("22.65"), D("113.25"), D("23"), D("0"))
    assert str(key.latitude) == "22.65"


@pytest.mark.parametrize(
    ("lat", "tilt", "azimuth"),
    [(D("95"), D("22"), D("180")), (D("22.6"), D("-1"), D("180")), (D("22.6"), D("22"), D("361"))],
)
def test_impossible_geometry_is_refused(lat, tilt, azimuth):
    with pytest.raises(ValueError):
        physics.orientation_key(lat, D("113.25"), tilt, azimuth)


@pytest.mark.parametrize("efficiency", [D("0"), D("-0.5"), D("1.2")])
def test_efficiency_outside_zero_to_one_is_refused(efficiency):
    with pytest.raises(ValueError):
        physics.clear_sky_yield(*XIAOLAN, D("22"), D("180"), 2025, efficiency)


def test_model_version_names_pvlib_and_efficiency_and_fits_the_cache_column():
    v = physics.model_version(D("0.860000"))
    assert pvlib.__version__ in v
    assert v.endswith("pr0.86")
    assert len(v) <= 40
    assert physics.model_version(D("0.85")) != v


def test_hourly_profile_adds_up_to_the_monthly_yields_and_is_dark_at_night(xiaolan_south_22):
    starts, ac = physics.hourly_clear_sky_ac_per_kwp(*XIAOLAN, D("22"), D("180"), 2025, EFFICIENCY)
    assert len(starts) == len(ac) == 8760
    assert starts[0].isoformat() == "2025-01-01T00:00:00+08:00"
    by_month = [0.0] * 12
    for start, kwh in zip(starts, ac, strict=True):
        by_month[start.month - 1] += float(kwh)
        if start.hour in (0, 1, 2, 3, 22, 23):
            assert kwh == 0
    for got, want in zip(by_month, xiaolan_south_22.monthly_kwh_per_kwp, strict=True):
        assert abs(D(repr(got)) - want) < D("0.001")
    assert max(ac) < 1.0  # a 1 kWp array never delivers more than 1 kW of AC under clear sky at 28 °C
