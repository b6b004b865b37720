"""Clear-sky upper bound of PV generation with pvlib, offline (domain.md §4.4).

Model chain per location and year, hourly, local time (Asia/Shanghai): solar position → Ineichen clear sky with the
Linke turbidity climatology shipped with pvlib → Hay-Davies plane-of-array irradiance → SAPM cell temperature →
PVWatts DC at 1 kWp → nominal inverter efficiency → system efficiency (parameter ``pv.performance_ratio_clear_sky``).
PVWatts is linear in kWp, so systems sharing a rounded location and orientation are computed once and scaled.
The result is a ceiling for metered generation, never a substitute for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from hashlib import sha1
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

# pandas and pvlib take about 0.6 s to import: they are imported where the profiles are computed, not when the
# platform starts (every command and page would wait for them otherwise)

FloatArray = npt.NDArray[np.float64]

# Model choices of the clear-sky chain, as measured in domain.md §4.4 (they are not methodology numbers):
#: PVWatts DC temperature coefficient of power (1/°C), domain.md §4.4.
GAMMA_PDC = -0.0037
#: SAPM cell-temperature coefficients, open rack glass/polymer (pvlib TEMPERATURE_MODEL_PARAMETERS), domain.md §4.4.
SAPM_A = -3.56
SAPM_B = -0.075
SAPM_DELTA_T = 3.0
#: Constant ambient air temperature (°C) and wind speed (m/s) of the clear-sky run, domain.md §4.4.
AIR_TEMPERATURE_C = 28.0
WIND_SPEED_M_S = 1.0
#: PVWatts nominal inverter efficiency (pvlib ``pvwatts_inverter`` eta_inv_nom), domain.md §4.4.
INVERTER_EFFICIENCY = 0.96
#: Ground albedo for the ground-reflected component (pvlib default), domain.md §4.4.
ALBEDO = 0.25
#: Local time of the platform: months and days of the bound are local calendar months and days.
TIMEZONE = "Asia/Shanghai"
#: Grouping grid: location to 0.05° (≈5 km, clear sky varies far less), orientation to whole degrees.
LOCATION_STEP = Decimal("0.05")
ORIENTATION_STEP = Decimal("1")
#: Identifier of this model chain; change it when the chain changes so cached profiles are recomputed.
MODEL_ID = "ineichen-hd"

#: Precision of clear-sky yields per kWp and of scaled bounds in kWh.
YIELD_Q = Decimal("0.001")
KWH_Q = Decimal("0.0001")


@dataclass(frozen=True)
class Orientation:
    """A rounded site and module orientation: the grouping key of the clear-sky bound (domain.md §4.4)."""

    latitude: Decimal
    longitude: Decimal
    tilt: Decimal
    azimuth: Decimal


@dataclass(frozen=True)
class ClearSkyYield:
    """Clear-sky AC yield per kWp for one orientation and year: 12 monthly values and the largest day (§4.4)."""

    monthly_kwh_per_kwp: tuple[Decimal, ...]
    max_daily_kwh_per_kwp: Decimal

    @property
    def annual_kwh_per_kwp(self) -> Decimal:
        """Sum of the monthly clear-sky yields: the hard annual ceiling of domain.md §4.4."""
        return sum(self.monthly_kwh_per_kwp, Decimal(0))


@dataclass(frozen=True)
class SystemSpec:
    """What the clear-sky bound needs of a PV system: site, orientation and capacity (domain.md §2.2, §4.4)."""

    system_id: int
    latitude: Decimal
    longitude: Decimal
    tilt: Decimal
    azimuth: Decimal
    capacity_kwp: Decimal


@dataclass(frozen=True)
class ClearSkyBound:
    """Clear-sky AC generation of one system (kWh): 12 monthly values and the largest day (domain.md §4.4)."""

    monthly_kwh: tuple[Decimal, ...]
    max_daily_kwh: Decimal

    @property
    def annual_kwh(self) -> Decimal:
        """Sum of the monthly clear-sky bounds (domain.md §4.4)."""
        return sum(self.monthly_kwh, Decimal(0))


def _round_to(value: Decimal, step: Decimal) -> Decimal:
    """Round half up to a multiple of step (used for the §4.4 grouping grid); the result has step's exponent."""
    return (value / step).to_integral_value(rounding=ROUND_HALF_UP) * step


def orientation_key(latitude: Decimal, longitude: Decimal, tilt: Decimal, azimuth: Decimal) -> Orientation:
    """The grouping key of a system: location rounded to 0.05°, tilt and azimuth to 1° (domain.md §4.4)."""
    if not Decimal(-90) <= latitude <= Decimal(90) or not Decimal(-180) <= longitude <= Decimal(180):
        raise ValueError(f"location out of range: {latitude}, {longitude}")
    if not Decimal(0) <= tilt <= Decimal(90):
        raise ValueError(f"tilt must be between 0 and 90 degrees, got {tilt}")
    if not Decimal(0) <= azimuth <= Decimal(360):
        raise ValueError(f"azimuth must be between 0 and 360 degrees, got {azimuth}")
    return Orientation(
        latitude=_round_to(latitude, LOCATION_STEP),
        longitude=_round_to(longitude, LOCATION_STEP),
        tilt=_round_to(tilt, ORIENTATION_STEP),
        azimuth=_round_to(azimuth, ORIENTATION_STEP) % Decimal(360),
    )


def model_version(system_efficiency: Decimal) -> str:
    """Identifier of the chain, pvlib version and efficiency that produced a cached profile (≤ 40 chars, §4.4)."""
    text = f"{MODEL_ID}/pvlib{version('pvlib')}/pr{system_efficiency.normalize()}"
    if len(text) > 40:
        text = f"{MODEL_ID}/{sha1(text.encode(), usedforsecurity=False).hexdigest()[:24]}"
    return text


def _hour_grid(year: int) -> tuple[pd.DatetimeIndex, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    import pandas as pd

    """Mid-hour local timestamps of a calendar year with the day-of-year index and month of each hour."""
    starts = pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq="1h", inclusive="left", tz=TIMEZONE)
    mid = starts + pd.Timedelta(minutes=30)
    day_index = np.asarray(starts.day_of_year, dtype=np.int64) - 1
    month = np.asarray(starts.month, dtype=np.int64)
    return mid, day_index, month


def _aoi_projection(
    tilts: FloatArray, azimuths: FloatArray, zenith: FloatArray, sun_azimuth: FloatArray
) -> FloatArray:
    """cos(angle of incidence), shape (hours, orientations), as pvlib.irradiance.aoi_projection but with
    cos(A_sun − A_surface) expanded into outer products so no trigonometry runs on the 2-D array (§4.4)."""
    t, a = np.radians(tilts), np.radians(azimuths)
    z, s = np.radians(zenith), np.radians(sun_azimuth)
    sin_z = np.sin(z)
    horizontal = np.outer(sin_z * np.cos(s), np.sin(t) * np.cos(a)) + np.outer(
        sin_z * np.sin(s), np.sin(t) * np.sin(a)
    )
    projection: FloatArray = horizontal + np.outer(np.cos(z), np.cos(t))
    return projection


def _hourly_ac_per_kwp(
    latitude: float,
    longitude: float,
    tilts: FloatArray,
    azimuths: FloatArray,
    times: pd.DatetimeIndex,
    efficiency: float,
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """Clear-sky AC power (kW per kWp) of N orientations at one location for the daytime hours (domain.md §4.4).

    Returns the daytime mask over `times` and an array of shape (daytime hours, N)."""
    import pvlib
    from pvlib import clearsky, irradiance, pvsystem, solarposition, temperature

    solpos = solarposition.get_solarposition(times, latitude, longitude)
    apparent_zenith = np.asarray(solpos["apparent_zenith"], dtype=np.float64)
    solar_azimuth = np.asarray(solpos["azimuth"], dtype=np.float64)
    day = apparent_zenith < 90.0
    n_day = int(day.sum())
    if n_day == 0:
        return day, np.zeros((0, tilts.size), dtype=np.float64)
    day_times = times[day]
    airmass_rel = pvlib.atmosphere.get_relative_airmass(apparent_zenith[day])
    linke = np.asarray(clearsky.lookup_linke_turbidity(day_times, latitude, longitude), dtype=np.float64)
    dni_extra = np.asarray(irradiance.get_extra_radiation(day_times), dtype=np.float64)
    altitude = float(pvlib.location.lookup_altitude(latitude, longitude))
    pressure = pvlib.atmosphere.alt2pres(altitude)
    airmass_abs = pvlib.atmosphere.get_absolute_airmass(airmass_rel, pressure)
    cs = clearsky.ineichen(apparent_zenith[day], airmass_abs, linke, altitude=altitude, dni_extra=dni_extra)
    ghi = np.asarray(cs["ghi"], dtype=np.float64)[:, None]
    dni = np.asarray(cs["dni"], dtype=np.float64)[:, None]
    dhi = np.asarray(cs["dhi"], dtype=np.float64)[:, None]
    surface_tilt = tilts[None, :]
    surface_azimuth = azimuths[None, :]
    sun_zenith = apparent_zenith[day]

    # geometry with the apparent (refracted) sun position, as pvlib's examples do; 0.01745 = cos(89°) is the
    # floor pvlib's Hay-Davies puts under cos(zenith) so the beam ratio stays finite at sunrise and sunset
    projection = np.maximum(_aoi_projection(tilts, azimuths, sun_zenith, solar_azimuth[day]), 0.0)
    ratio = projection / np.maximum(np.cos(np.radians(sun_zenith)), 0.01745)[:, None]
    poa_beam = dni * projection
    poa_sky = irradiance.haydavies(
        surface_tilt, surface_azimuth, dhi, dni, dni_extra[:, None], projection_ratio=ratio
    )
    poa_ground = irradiance.get_ground_diffuse(surface_tilt, ghi, albedo=ALBEDO)
    poa_global = np.asarray(poa_beam + poa_sky + poa_ground, dtype=np.float64)
    temp_cell = temperature.sapm_cell(
        poa_global, AIR_TEMPERATURE_C, WIND_SPEED_M_S, SAPM_A, SAPM_B, SAPM_DELTA_T
    )
    dc_kw = pvsystem.pvwatts_dc(poa_global, temp_cell, 1.0, GAMMA_PDC)
    ac_kw = np.asarray(dc_kw, dtype=np.float64) * (INVERTER_EFFICIENCY * efficiency)
    return day, np.maximum(ac_kw, 0.0)


def _yields_at_location(
    latitude: float, longitude: float, tilts: FloatArray, azimuths: FloatArray, year: int, efficiency: float
) -> tuple[FloatArray, FloatArray]:
    """Monthly (12, N) and max daily (N,) clear-sky yield in kWh per kWp for N orientations (domain.md §4.4)."""
    times, day_index, month = _hour_grid(year)
    day, ac = _hourly_ac_per_kwp(latitude, longitude, tilts, azimuths, times, efficiency)
    monthly = np.zeros((12, tilts.size), dtype=np.float64)
    if ac.shape[0] == 0:
        return monthly, np.zeros(tilts.size, dtype=np.float64)
    # hourly power in kW over one hour is kWh; rows are sorted in time, so reduceat sums runs of equal keys
    d_idx = day_index[day]
    day_starts = np.flatnonzero(np.r_[True, d_idx[1:] != d_idx[:-1]])
    daily = np.add.reduceat(ac, day_starts, axis=0)
    m_of_day = month[day][day_starts]
    month_starts = np.flatnonzero(np.r_[True, m_of_day[1:] != m_of_day[:-1]])
    monthly[m_of_day[month_starts] - 1] = np.add.reduceat(daily, month_starts, axis=0)
    return monthly, daily.max(axis=0)


def _to_yield(monthly: FloatArray, max_daily: float) -> ClearSkyYield:
    """Decimal per-kWp yields from the float arrays, at the boundary where they become stored numbers (§4.4)."""
    return ClearSkyYield(
        monthly_kwh_per_kwp=tuple(
            Decimal(repr(float(v))).quantize(YIELD_Q, rounding=ROUND_HALF_UP) for v in monthly
        ),
        max_daily_kwh_per_kwp=Decimal(repr(float(max_daily))).quantize(YIELD_Q, rounding=ROUND_HALF_UP),
    )


def _check_efficiency(system_efficiency: Decimal) -> float:
    """The system efficiency as a float, refusing values outside (0, 1] (domain.md §4.4)."""
    if not Decimal(0) < system_efficiency <= Decimal(1):
        raise ValueError(f"system efficiency must be in (0, 1], got {system_efficiency}")
    return float(system_efficiency)


def clear_sky_yield(
    latitude: Decimal,
    longitude: Decimal,
    tilt: Decimal,
    azimuth: Decimal,
    year: int,
    system_efficiency: Decimal,
) -> ClearSkyYield:
    """Clear-sky yield per kWp of one exact location and orientation for a calendar year (domain.md §4.4)."""
    efficiency = _check_efficiency(system_efficiency)
    monthly, max_daily = _yields_at_location(
        float(latitude),
        float(longitude),
        np.array([float(tilt)], dtype=np.float64),
        np.array([float(azimuth)], dtype=np.float64),
        year,
        efficiency,
    )
    return _to_yield(monthly[:, 0], float(max_daily[0]))


def hourly_clear_sky_ac_per_kwp(
    latitude: Decimal,
    longitude: Decimal,
    tilt: Decimal,
    azimuth: Decimal,
    year: int,
    system_efficiency: Decimal,
) -> tuple[list[datetime], FloatArray]:
    """Hour starts (local, tz-aware) of a calendar year and the clear-sky AC energy of each hour in kWh per kWp
    (domain.md §4.4): the hourly ceiling before the margin, and a clear-sky shape for synthetic data."""
    efficiency = _check_efficiency(system_efficiency)
    times, _day_index, _month = _hour_grid(year)
    day, ac = _hourly_ac_per_kwp(
        float(latitude),
        float(longitude),
        np.array([float(tilt)], dtype=np.float64),
        np.array([float(azimuth)], dtype=np.float64),
        times,
        efficiency,
    )
    hourly = np.zeros(len(times), dtype=np.float64)
    hourly[day] = ac[:, 0]
    import pandas as pd

    starts = times - pd.Timedelta(minutes=30)
    return list(starts.to_pydatetime()), hourly


def clear_sky_yields(
    orientations: Iterable[Orientation], year: int, system_efficiency: Decimal
) -> dict[Orientation, ClearSkyYield]:
    """Clear-sky yield per kWp for many grouping keys: sun and sky once per location, all orientations of that
    location in one array pass (domain.md §4.4)."""
    efficiency = _check_efficiency(system_efficiency)
    by_location: dict[tuple[Decimal, Decimal], list[Orientation]] = defaultdict(list)
    for o in set(orientations):
        by_location[(o.latitude, o.longitude)].append(o)
    out: dict[Orientation, ClearSkyYield] = {}
    for (lat, lon), group in sorted(by_location.items()):
        tilts = np.array([float(o.tilt) for o in group], dtype=np.float64)
        azimuths = np.array([float(o.azimuth) for o in group], dtype=np.float64)
        monthly, max_daily = _yields_at_location(float(lat), float(lon), tilts, azimuths, year, efficiency)
        for i, o in enumerate(group):
            out[o] = _to_yield(monthly[:, i], float(max_daily[i]))
    return out


def scale_yield(clear_sky: ClearSkyYield, capacity_kwp: Decimal) -> ClearSkyBound:
    """Clear-sky generation of a system of `capacity_kwp` (PVWatts is linear in kWp, domain.md §4.4)."""
    if capacity_kwp <= 0:
        raise ValueError(f"capacity must be positive, got {capacity_kwp}")
    return ClearSkyBound(
        monthly_kwh=tuple(
            (v * capacity_kwp).quantize(KWH_Q, rounding=ROUND_HALF_UP) for v in clear_sky.monthly_kwh_per_kwp
        ),
        max_daily_kwh=(clear_sky.max_daily_kwh_per_kwp * capacity_kwp).quantize(
            KWH_Q, rounding=ROUND_HALF_UP
        ),
    )


def clear_sky_bounds(
    specs: Sequence[SystemSpec], year: int, system_efficiency: Decimal
) -> dict[int, ClearSkyBound]:
    """Clear-sky bounds of many systems: grouped by rounded location and orientation, computed at 1 kWp once per
    group and scaled by each system's capacity (domain.md §4.4)."""
    keys = {s.system_id: orientation_key(s.latitude, s.longitude, s.tilt, s.azimuth) for s in specs}
    yields = clear_sky_yields(keys.values(), year, system_efficiency)
    return {s.system_id: scale_yield(yields[keys[s.system_id]], s.capacity_kwp) for s in specs}
