"""Services of investment and financing: financing projects (draft → published → closed), their expected
generation and cash flows, financiers' expressions of interest with notifications to the owner, the
administrators' pipeline, financier sign-up with approval, and the public rooftop potential estimator.

Who may do what is checked here, for every door (pages, API):
- project owners (enterprise or institution owners, aggregators) see and change only their own projects and see the
  leads on them;
- financiers see published projects (and closed ones they expressed interest in) and only their own interest;
- registry administrators see everything.

Each `do_*` function runs in one transaction; input a user can get wrong raises `FinanceInvalid` (every problem,
each naming its field and the reason, translated) or `DomainError`, and changes nothing.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts.models import Membership, Organisation, Role, RoleGrant, User
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.params import MissingParameter, get_parameter
from lowcarbon.finance.domain import cashflow as cf
from lowcarbon.finance.domain import rooftop as rt
from lowcarbon.finance.models import FinancingProject, FinancingType, Interest, ProjectKind
from lowcarbon.methodology.models import FactorAssignment, GridFactor, Methodology
from lowcarbon.methodology.services import factor_ef_cm
from lowcarbon.pv import access
from lowcarbon.pv.domain import physics
from lowcarbon.pv.models import Community, PVSystem
from lowcarbon.registry.models import Notification

State = FinancingProject.State

#: roles that may publish a financing need, and the project kind each one publishes
OWNER_ROLE_KINDS = {
    Role.OWNER_ENTERPRISE: ProjectKind.ENTERPRISE_ROOF,
    Role.OWNER_INSTITUTION: ProjectKind.INSTITUTION_ROOF,
    Role.AGGREGATOR: ProjectKind.HOUSEHOLD_PROGRAMME,
}
#: the clear-sky model runs on this (non-leap) year; expected generation is a typical year, not a forecast
REFERENCE_YEAR = 2025
#: the system efficiency of the clear-sky chain (shared with the plausibility bound, domain.md §4.4)
CLEAR_SKY_EFFICIENCY_KEY = "pv.performance_ratio_clear_sky"
PACKING_KEY = "finance.packing_m2_per_kwp"
DEFAULT_TILT = Decimal(10)
DEFAULT_AZIMUTH = Decimal(180)
NOTIFICATION_MAX = 300
MAX_SYSTEMS = 500
MAX_ROOFS = 50


# ---------------------------------------------------------------------------------------------------------------
# the editable assumptions: key (as on pages and in the API), parameter key of the default, unit, percent?


@dataclass(frozen=True)
class AssumptionSpec:
    """One editable assumption of a calculation; `percent` ones are entered in % and used as fractions."""

    key: str
    param: str | None
    label: Any
    unit: str
    percent: bool = False
    whole: bool = False


ASSUMPTIONS: tuple[AssumptionSpec, ...] = (
    AssumptionSpec(
        "performance_ratio", "finance.performance_ratio", _("Performance ratio against clear sky"), ""
    ),
    AssumptionSpec(
        "self_consumption_percent", None, _("Self-consumed share of generation"), "%", percent=True
    ),
    AssumptionSpec(
        "tariff_cny_per_kwh", "finance.tariff_business", _("Electricity tariff replaced"), "CNY/kWh"
    ),
    AssumptionSpec(
        "feed_in_cny_per_kwh", "finance.feed_in_price", _("Feed-in price of exported electricity"), "CNY/kWh"
    ),
    AssumptionSpec("grid_factor_kg_per_kwh", None, _("Grid emission factor EF_CM"), "kgCO2/kWh"),
    AssumptionSpec(
        "unit_price_cny_per_t",
        "finance.unit_price_indicative",
        _("Unit price (indicative, not a quote)"),
        "CNY/tCO2e",
    ),
    AssumptionSpec("capex_cny_per_kwp", "finance.capex_per_kwp", _("Investment per kWp"), "CNY/kWp"),
    AssumptionSpec(
        "om_cny_per_kwp_year", "finance.om_per_kwp_year", _("Operation and maintenance"), "CNY/kWp·a"
    ),
    AssumptionSpec(
        "degradation_percent",
        "finance.degradation_per_year",
        _("Output degradation per year"),
        "%/a",
        percent=True,
    ),
    AssumptionSpec("lifetime_years", "finance.lifetime_years", _("Lifetime"), "a", whole=True),
    AssumptionSpec("discount_rate_percent", "finance.discount_rate", _("Discount rate"), "%", percent=True),
)
SPECS = {s.key: s for s in ASSUMPTIONS}
#: the household tariff replaces the business tariff in household programmes
HOUSEHOLD_TARIFF_KEY = "finance.tariff_household"
SELF_CONSUMPTION_KEY = "finance.self_consumption_share"

#: domain field of each assumption key (the rest of `cashflow.Assumptions` comes from the project)
DOMAIN_FIELD = {
    "self_consumption_percent": "self_consumption_share",
    "tariff_cny_per_kwh": "tariff_cny_per_kwh",
    "feed_in_cny_per_kwh": "feed_in_cny_per_kwh",
    "grid_factor_kg_per_kwh": "grid_factor_kg_per_kwh",
    "unit_price_cny_per_t": "unit_price_cny_per_t",
    "capex_cny_per_kwp": "capex_cny_per_kwp",
    "om_cny_per_kwp_year": "om_cny_per_kwp_year",
    "degradation_percent": "degradation_per_year",
    "lifetime_years": "lifetime_years",
    "discount_rate_percent": "discount_rate",
}

#: allowed range of the performance ratio (a share of the clear-sky yield)
PR_LOW, PR_HIGH = Decimal("0.1"), Decimal(1)


# ---------------------------------------------------------------------------------------------------------------
# errors


@dataclass(frozen=True)
class Problem:
    """A refused input: the field (as named on the page / in the API) and the translated reason."""

    field: str
    message: str


class FinanceInvalid(DomainError):
    """Input refused; carries every problem found. Nothing was changed."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        super().__init__("invalid", "; ".join(p.message for p in problems), field=first.field)
        self.problems = problems


FIELD_LABELS: dict[str, Any] = {
    "name": _("Project name"),
    "community": _("Community"),
    "roof_area_m2": _("Usable roof area (m²)"),
    "capacity_kwp": _("Planned capacity (kWp)"),
    "systems": _("Linked PV systems"),
    "amount_cny": _("Amount sought (CNY)"),
    "financing_type": _("Financing type"),
    "tilt_deg": _("Tilt (°)"),
    "azimuth_deg": _("Azimuth (°, 180 = south)"),
    "self_consumption_percent": _("Self-consumed share of generation"),
    "description": _("Description"),
    "owner_org": _("Project owner"),
    "message": _("Message"),
    "terms": _("Proposed terms"),
    "packing_m2_per_kwp": _("Packing density (m² per kWp)"),
    "area_m2": _("Usable roof area (m²)"),
    "username": _("User name"),
    "password": _("Password"),
    "real_name": _("Real name"),
    "phone": _("Phone"),
    "org_name": _("Institution name"),
    "credit_code": _("Unified social credit code"),
}


def field_label(name: str) -> str:
    if name in SPECS:
        return str(SPECS[name].label)
    return str(FIELD_LABELS.get(name, name))


def _p(field: str, message: Any, **args: Any) -> Problem:
    text = str(message) % args if args else str(message)
    return Problem(field, gettext("%(field)s: %(reason)s") % {"field": field_label(field), "reason": text})


def parse_decimal(
    problems: list[Problem],
    field: str,
    value: Any,
    *,
    required: bool = True,
    low: Decimal | None = None,
    high: Decimal | None = None,
    low_open: bool = False,
    whole: bool = False,
) -> Decimal | None:
    """A Decimal from user input, or None with a problem naming the field and the reason."""
    text = "" if value is None else str(value).strip().replace(",", "")
    if text == "":
        if required:
            problems.append(_p(field, _("this field is required")))
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        problems.append(_p(field, _("“%(value)s” is not a number"), value=text[:40]))
        return None
    if not d.is_finite():
        problems.append(_p(field, _("“%(value)s” is not a number"), value=text[:40]))
        return None
    if whole and d != d.to_integral_value():
        problems.append(_p(field, _("must be a whole number")))
        return None
    too_low = low is not None and (d <= low if low_open else d < low)
    too_high = high is not None and d > high
    if too_low or too_high:
        if low is not None and high is not None:
            msg = _("%(value)s is outside the allowed range %(low)s to %(high)s")
            if low_open:
                msg = _("%(value)s is outside the allowed range: above %(low)s, at most %(high)s")
            problems.append(_p(field, msg, value=d, low=_fmt(low), high=_fmt(high)))
        elif low is not None:
            problems.append(
                _p(
                    field,
                    _("must be greater than %(low)s") if low_open else _("must be at least %(low)s"),
                    low=_fmt(low),
                )
            )
        else:
            problems.append(_p(field, _("must be at most %(high)s"), high=_fmt(high)))
        return None
    return d


def _fmt(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    return text


# ---------------------------------------------------------------------------------------------------------------
# who is who


def owner_grants(user: Any) -> list[tuple[str, Organisation | None]]:
    """(role, organisation) pairs through which the person may publish financing needs."""
    if user is None or not user.is_authenticated:
        return []
    return [
        (g.role, g.organisation)
        for g in RoleGrant.objects.filter(user=user, role__in=list(OWNER_ROLE_KINDS)).select_related(
            "organisation"
        )
    ]


def may_publish(user: Any) -> bool:
    return bool(owner_grants(user))


def is_financier(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_role(Role.FINANCIER))


def financier_org(user: Any) -> Organisation | None:
    g = RoleGrant.objects.filter(user=user, role=Role.FINANCIER, organisation__isnull=False).first()
    if g is not None:
        return g.organisation
    m = Membership.objects.filter(user=user, organisation__kind=Organisation.Kind.FINANCIAL).first()
    return m.organisation if m else None


def _owner_org_ids(user: Any) -> list[int]:
    return [org.pk for _role, org in owner_grants(user) if org is not None]


def is_owner_side(user: Any, project: FinancingProject) -> bool:
    """The person who created the project, or someone acting for its owning organisation in an owner role."""
    if user is None or not user.is_authenticated:
        return False
    if project.owner_user_id == user.pk:
        return True
    return project.owner_org_id is not None and project.owner_org_id in _owner_org_ids(user)


def visible_projects(user: Any) -> QuerySet[FinancingProject]:
    """Projects the person may see (see the module docstring)."""
    if user is None or not user.is_authenticated:
        return FinancingProject.objects.none()
    if user.is_registry_admin:
        return FinancingProject.objects.all()
    cond = Q(owner_user=user)
    orgs = _owner_org_ids(user)
    if orgs:
        cond |= Q(owner_org_id__in=orgs)
    if is_financier(user):
        cond |= Q(state=State.PUBLISHED) | Q(state=State.CLOSED, interests__financier=user)
    return FinancingProject.objects.filter(cond).distinct()


def get_visible(user: Any, code: str) -> FinancingProject:
    project = (
        visible_projects(user)
        .select_related("owner_user", "owner_org", "community")
        .filter(code=code)
        .first()
    )
    if project is None:
        raise DomainError("not_found", gettext("No such project, or not one you may see."))
    return project


def visible_interests(user: Any, project: FinancingProject) -> QuerySet[Interest]:
    """The leads on a project: all of them for the owner's side and administrators, a financier's own otherwise."""
    qs = project.interests.select_related("financier", "financier_org").order_by("-created_at", "-pk")
    if user.is_registry_admin or is_owner_side(user, project):
        return qs
    if is_financier(user):
        return qs.filter(financier=user)
    return qs.none()


def filter_projects(qs: QuerySet[FinancingProject], params: Mapping[str, Any]) -> QuerySet[FinancingProject]:
    """Filters of the lists: state, community (code), financing type, kind, amount range (CNY), text in name."""
    state = params.get("state") or ""
    if state in State.values:
        qs = qs.filter(state=state)
    community = params.get("community") or ""
    if community:
        qs = qs.filter(community__code=community)
    ftype = params.get("financing_type") or ""
    if ftype in FinancingType.values:
        qs = qs.filter(financing_type=ftype)
    kind = params.get("kind") or ""
    if kind in ProjectKind.values:
        qs = qs.filter(kind=kind)
    for name, lookup in (("min_amount", "amount_cny__gte"), ("max_amount", "amount_cny__lte")):
        raw = str(params.get(name) or "").strip()
        if raw:
            with contextlib.suppress(InvalidOperation):
                qs = qs.filter(**{lookup: Decimal(raw)})
    q = str(params.get("q") or "").strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(code__iexact=q) | Q(description__icontains=q))
    return qs


# ---------------------------------------------------------------------------------------------------------------
# defaults, grid factor, expected yield


def _param(key: str) -> tuple[Decimal, int]:
    p = get_parameter(key)
    return p.value, p.version


def current_grid_factor(on: date | None = None) -> tuple[GridFactor, Decimal]:
    """The crediting grid factor of the methodology in force on `on` (today): its latest factor assignment valid
    then, as quantification uses it (domain.md §2.3–2.4)."""
    on = on or timezone.localdate()
    methodology = (
        Methodology.objects.filter(effective_from__lte=on)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=on))
        .order_by("-effective_from")
        .first()
    )
    assignment = None
    if methodology is not None:
        assignment = (
            FactorAssignment.objects.filter(methodology=methodology, valid_from__lte=on)
            .select_related("factor")
            .order_by("-valid_from")
            .first()
        )
    ef = factor_ef_cm(assignment.factor) if assignment is not None else None
    if assignment is None or ef is None:
        raise DomainError(
            "no_grid_factor",
            gettext(
                "No methodology with a usable grid factor is in force today; an administrator must add one."
            ),
        )
    return assignment.factor, ef


def default_assumptions(
    kind: str, self_consumption_share: Decimal | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """Default values of every assumption (page units: percent where marked) and the versions they came from:
    parameter versions, and the grid-factor record code."""
    values: dict[str, str] = {}
    versions: dict[str, Any] = {}
    for spec in ASSUMPTIONS:
        key = spec.param
        if spec.key == "tariff_cny_per_kwh" and kind == ProjectKind.HOUSEHOLD_PROGRAMME:
            key = HOUSEHOLD_TARIFF_KEY
        if spec.key == "self_consumption_percent":
            if self_consumption_share is not None:
                values[spec.key] = _fmt(self_consumption_share * 100)
                continue
            key = SELF_CONSUMPTION_KEY
        if spec.key == "grid_factor_kg_per_kwh":
            factor, ef = current_grid_factor()
            values[spec.key] = _fmt(ef)
            versions["grid_factor"] = factor.code
            continue
        assert key is not None
        value, version = _param(key)
        values[spec.key] = _fmt(value * 100 if spec.percent else value)
        versions[key] = version
    return values, versions


@functools.lru_cache(maxsize=512)
def _clear_sky_per_kwp(
    lat: Decimal, lon: Decimal, tilt: Decimal, azimuth: Decimal, efficiency: Decimal
) -> Decimal:
    y = physics.clear_sky_yield(lat, lon, tilt, azimuth, REFERENCE_YEAR, efficiency)
    return y.annual_kwh_per_kwp


def clear_sky_yield(lat: Decimal, lon: Decimal, tilt: Decimal, azimuth: Decimal) -> Decimal:
    """Clear-sky AC yield in kWh per kWp and year (pvlib Ineichen, offline; domain.md §4.4) at a rounded site and
    orientation, for the reference year."""
    key = physics.orientation_key(Decimal(lat), Decimal(lon), Decimal(tilt), Decimal(azimuth))
    efficiency = get_parameter(CLEAR_SKY_EFFICIENCY_KEY).value
    return _clear_sky_per_kwp(key.latitude, key.longitude, key.tilt, key.azimuth, efficiency)


def town_centre() -> tuple[Decimal, Decimal]:
    """Coordinates used when no community is chosen: the mean of the communities' centres."""
    rows = list(Community.objects.values_list("latitude", "longitude"))
    if not rows:
        return Decimal("22.67"), Decimal("113.25")
    n = len(rows)
    lat = sum((Decimal(r[0]) for r in rows), Decimal(0)) / n
    lon = sum((Decimal(r[1]) for r in rows), Decimal(0)) / n
    return lat.quantize(Decimal("0.0001")), lon.quantize(Decimal("0.0001"))


# ---------------------------------------------------------------------------------------------------------------
# calculation


@dataclass(frozen=True)
class AssumptionRow:
    """An assumption as shown: value, unit, whether it differs from the platform default, and its source."""

    spec: AssumptionSpec
    value: str
    default: str
    source: str

    @property
    def changed(self) -> bool:
        try:
            return Decimal(self.value) != Decimal(self.default)
        except InvalidOperation:
            return True


@dataclass(frozen=True)
class Calculation:
    """Expected generation, avoided emissions and cash flows of a project under a set of assumptions."""

    values: dict[str, str]
    rows: list[AssumptionRow]
    clear_sky_kwh_per_kwp: Decimal
    specific_yield_kwh_per_kwp: Decimal
    first_year_kwh: Decimal
    first_year_t: Decimal
    result: cf.CashflowResult
    grid_factor_code: str

    @property
    def lifetime_t(self) -> Decimal:
        return (self.result.total_er_kg / 1000).quantize(Decimal("0.1"))

    def chart(self) -> dict[str, Any]:
        """Data of the cash-flow chart: yearly net cash flow and cumulative position (CNY)."""
        return {
            "years": [r.year for r in self.result.rows],
            "net": [float(r.net) for r in self.result.rows],
            "cumulative": [float(r.cumulative) for r in self.result.rows],
        }


def parameter_sources() -> dict[str, str]:
    """Parameter key → 'label vN [tag]: source' for the assumptions table."""
    out = {}
    keys = {s.param for s in ASSUMPTIONS if s.param} | {
        HOUSEHOLD_TARIFF_KEY,
        SELF_CONSUMPTION_KEY,
        PACKING_KEY,
    }
    for key in keys:
        try:
            p = get_parameter(key)
        except MissingParameter:
            continue
        out[key] = f"{p.label} v{p.version} [{p.confidence}] · {p.source}"
    return out


def _source_for(
    spec: AssumptionSpec, kind: str, versions: Mapping[str, Any], sources: Mapping[str, str]
) -> str:
    if spec.key == "grid_factor_kg_per_kwh":
        return gettext(
            "Grid-factor record %(code)s of the methodology in force (Methodologies and factors page)"
        ) % {"code": versions.get("grid_factor", "")}
    if spec.key == "self_consumption_percent":
        return gettext("From the project; platform default: %(source)s") % {
            "source": sources.get(SELF_CONSUMPTION_KEY, "")
        }
    key = spec.param or ""
    if spec.key == "tariff_cny_per_kwh" and kind == ProjectKind.HOUSEHOLD_PROGRAMME:
        key = HOUSEHOLD_TARIFF_KEY
    return sources.get(key, "")


def parse_assumptions(values: Mapping[str, Any], base: Mapping[str, str]) -> dict[str, str]:
    """Assumption values from user input over `base`; FinanceInvalid naming each refused field."""
    problems: list[Problem] = []
    out: dict[str, str] = dict(base)
    for spec in ASSUMPTIONS:
        if spec.key not in values or str(values[spec.key]).strip() == "":
            continue
        d = _check_assumption(problems, spec, values[spec.key])
        if d is not None:
            out[spec.key] = _fmt(d)
    if problems:
        raise FinanceInvalid(problems)
    return out


def _check_assumption(problems: list[Problem], spec: AssumptionSpec, raw: Any) -> Decimal | None:
    if spec.key == "performance_ratio":
        return parse_decimal(problems, spec.key, raw, low=PR_LOW, high=PR_HIGH)
    field = DOMAIN_FIELD[spec.key]
    low, high, low_open, high_open = cf.RANGES[field]
    scale = Decimal(100) if spec.percent else Decimal(1)
    d = parse_decimal(
        problems, spec.key, raw, low=low * scale, high=high * scale, low_open=low_open, whole=spec.whole
    )
    if d is not None and high_open and d >= high * scale:
        problems.append(_p(spec.key, _("must be below %(high)s"), high=_fmt(high * scale)))
        return None
    return d


def calculate(project: FinancingProject, overrides: Mapping[str, Any] | None = None) -> Calculation:
    """The project's calculation with its saved assumptions, or with `overrides` for this calculation only
    (nothing is saved). Raises FinanceInvalid for refused overrides."""
    defaults, versions = default_assumptions(project.kind, project.self_consumption_share)
    saved = {**defaults, **(project.assumptions or {})}
    values = parse_assumptions(overrides or {}, saved)
    versions = {**versions, **(project.parameter_versions or {})}
    return _calculate(
        project.community.latitude,
        project.community.longitude,
        project.tilt_deg,
        project.azimuth_deg,
        project.capacity_kwp,
        project.kind,
        values,
        defaults,
        versions,
    )


def _calculate(
    lat: Decimal,
    lon: Decimal,
    tilt: Decimal,
    azimuth: Decimal,
    capacity_kwp: Decimal,
    kind: str,
    values: Mapping[str, str],
    defaults: Mapping[str, str],
    versions: Mapping[str, Any],
) -> Calculation:
    clear = clear_sky_yield(lat, lon, tilt, azimuth)
    pr = Decimal(values["performance_ratio"])
    specific = (clear * pr).quantize(Decimal("0.1"))
    d = {k: Decimal(values[k]) for k in DOMAIN_FIELD}
    a = cf.Assumptions(
        capacity_kwp=capacity_kwp,
        specific_yield_kwh_per_kwp=specific,
        self_consumption_share=d["self_consumption_percent"] / 100,
        tariff_cny_per_kwh=d["tariff_cny_per_kwh"],
        feed_in_cny_per_kwh=d["feed_in_cny_per_kwh"],
        grid_factor_kg_per_kwh=d["grid_factor_kg_per_kwh"],
        unit_price_cny_per_t=d["unit_price_cny_per_t"],
        capex_cny_per_kwp=d["capex_cny_per_kwp"],
        om_cny_per_kwp_year=d["om_cny_per_kwp_year"],
        degradation_per_year=d["degradation_percent"] / 100,
        lifetime_years=int(d["lifetime_years"]),
        discount_rate=d["discount_rate_percent"] / 100,
    )
    result = cf.compute(a)
    sources = parameter_sources()
    rows = [
        AssumptionRow(
            s, values[s.key], defaults.get(s.key, values[s.key]), _source_for(s, kind, versions, sources)
        )
        for s in ASSUMPTIONS
    ]
    first = result.first_year
    first_kwh = first.generation_kwh if first else Decimal(0)
    return Calculation(
        values=dict(values),
        rows=rows,
        clear_sky_kwh_per_kwp=clear,
        specific_yield_kwh_per_kwp=specific,
        first_year_kwh=first_kwh,
        first_year_t=(first.er_kg / 1000).quantize(Decimal("0.01")) if first else Decimal(0),
        result=result,
        grid_factor_code=str(versions.get("grid_factor", "")),
    )


# ---------------------------------------------------------------------------------------------------------------
# projects


def owner_choices(user: Any) -> list[tuple[str, str]]:
    """(value, label) of the owners a person may publish for: 'org:<id>' per organisation, 'self' otherwise."""
    out: list[tuple[str, str]] = []
    seen = set()
    for role, org in owner_grants(user):
        value = f"org:{org.pk}" if org is not None else f"self:{role}"
        if value in seen:
            continue
        seen.add(value)
        kind = OWNER_ROLE_KINDS[Role(role)]
        label = org.display_name if org is not None else user.display_name
        out.append((value, f"{label} · {ProjectKind(kind).label}"))
    return out


def _resolve_owner(user: Any, value: str, problems: list[Problem]) -> tuple[Organisation | None, str]:
    grants = owner_grants(user)
    if not grants:
        raise DomainError(
            "not_allowed",
            gettext("Only enterprise or institution owners and aggregators publish financing needs."),
        )
    value = (value or "").strip()
    for role, org in grants:
        if (org is not None and value == f"org:{org.pk}") or (org is None and value == f"self:{role}"):
            return org, OWNER_ROLE_KINDS[Role(role)]
    if not value and len({(r, o.pk if o else None) for r, o in grants}) >= 1:
        role, org = grants[0]
        return org, OWNER_ROLE_KINDS[Role(role)]
    problems.append(_p("owner_org", _("not an organisation you act for")))
    role, org = grants[0]
    return org, OWNER_ROLE_KINDS[Role(role)]


def _clean_project(user: Any, data: Mapping[str, Any], *, systems: Sequence[str] | None) -> dict[str, Any]:
    problems: list[Problem] = []
    out: dict[str, Any] = {}
    name = str(data.get("name") or "").strip()
    if not name:
        problems.append(_p("name", _("this field is required")))
    elif len(name) > 200:
        problems.append(_p("name", _("at most %(max)s characters"), max=200))
    out["name"] = name
    code = str(data.get("community") or "").strip()
    community = Community.objects.filter(code=code).first() if code else None
    if community is None:
        if code:
            problems.append(_p("community", _("unknown community “%(value)s”"), value=code[:40]))
        else:
            problems.append(_p("community", _("this field is required")))
    out["community"] = community
    try:
        limit = get_parameter("pv.capacity_limit_kwp").value
    except MissingParameter:
        limit = Decimal(6000)
    area = parse_decimal(
        problems,
        "roof_area_m2",
        data.get("roof_area_m2"),
        required=False,
        low=Decimal(0),
        low_open=True,
        high=rt.MAX_AREA_M2,
    )
    kwp = parse_decimal(
        problems, "capacity_kwp", data.get("capacity_kwp"), required=False, low=Decimal(0), low_open=True
    )
    if kwp is not None and kwp >= limit:
        problems.append(
            _p(
                "capacity_kwp",
                _("%(value)s kWp is not below the methodology limit of %(limit)s kWp"),
                value=_fmt(kwp),
                limit=_fmt(limit),
            )
        )
        kwp = None
    if kwp is None and area is not None:
        packing = get_parameter(PACKING_KEY).value
        kwp = rt.capacity_from_area(area, packing)
        if kwp >= limit:
            problems.append(
                _p(
                    "roof_area_m2",
                    _("the roof would carry %(value)s kWp, not below the methodology limit of %(limit)s kWp"),
                    value=_fmt(kwp),
                    limit=_fmt(limit),
                )
            )
    if (
        kwp is None
        and area is None
        and not any(p.field in ("roof_area_m2", "capacity_kwp") for p in problems)
    ):
        problems.append(_p("capacity_kwp", _("give the planned capacity or the usable roof area")))
    out["roof_area_m2"] = area
    out["capacity_kwp"] = kwp.quantize(Decimal("0.01")) if kwp is not None else None
    out["amount_cny"] = parse_decimal(
        problems,
        "amount_cny",
        data.get("amount_cny"),
        low=Decimal(0),
        low_open=True,
        high=Decimal("999999999999"),
    )
    ftype = str(data.get("financing_type") or "").strip()
    if ftype not in FinancingType.values:
        problems.append(
            _p(
                "financing_type",
                _("“%(value)s” is not one of %(choices)s"),
                value=ftype[:40],
                choices=", ".join(FinancingType.values),
            )
        )
    out["financing_type"] = ftype
    out["tilt_deg"] = parse_decimal(
        problems, "tilt_deg", data.get("tilt_deg") or DEFAULT_TILT, low=Decimal(0), high=Decimal(90)
    )
    out["azimuth_deg"] = parse_decimal(
        problems, "azimuth_deg", data.get("azimuth_deg") or DEFAULT_AZIMUTH, low=Decimal(0), high=Decimal(360)
    )
    raw_share = data.get("self_consumption_percent")
    if raw_share in (None, ""):
        share = get_parameter(SELF_CONSUMPTION_KEY).value
    else:
        pct = parse_decimal(
            problems, "self_consumption_percent", raw_share, low=Decimal(0), high=Decimal(100)
        )
        share = pct / 100 if pct is not None else None
    out["self_consumption_share"] = share
    description = str(data.get("description") or "").strip()
    if len(description) > 5000:
        problems.append(_p("description", _("at most %(max)s characters"), max=5000))
    out["description"] = description
    if systems is not None:
        wanted = list(dict.fromkeys(str(s).strip() for s in systems if str(s).strip()))
        if len(wanted) > MAX_SYSTEMS:
            problems.append(_p("systems", _("at most %(max)s systems"), max=MAX_SYSTEMS))
            wanted = []
        found = {s.code: s for s in access.managed_systems(user).filter(code__in=wanted)}
        unknown = [c for c in wanted if c not in found]
        if unknown:
            problems.append(
                _p("systems", _("not systems you manage: %(codes)s"), codes=", ".join(unknown[:20]))
            )
        out["systems"] = [found[c] for c in wanted if c in found]
    owner_org, kind = _resolve_owner(user, str(data.get("owner_org") or ""), problems)
    out["owner_org"], out["kind"] = owner_org, kind
    if problems:
        raise FinanceInvalid(problems)
    return out


def do_create_project(user: Any, data: Mapping[str, Any], systems: Sequence[str] = ()) -> FinancingProject:
    """A draft financing project of the person (or the organisation they act for), with the default assumptions
    of today's parameter versions."""
    clean = _clean_project(user, data, systems=systems)
    defaults, versions = default_assumptions(clean["kind"], clean["self_consumption_share"])
    linked = clean.pop("systems")
    with transaction.atomic():
        project = FinancingProject.objects.create(
            code=f"TMP-{timezone.now().timestamp()}"[:20],
            owner_user=user,
            assumptions=defaults,
            parameter_versions=versions,
            **clean,
        )
        project.code = f"FP-{project.pk:05d}"
        project.save(update_fields=["code"])
        if linked:
            project.systems.set(linked)
    return project


def _require_owner_side(user: Any, project: FinancingProject) -> None:
    if not is_owner_side(user, project):
        raise DomainError("not_allowed", gettext("Only the project's owner may do this."))


def do_update_project(
    user: Any, project: FinancingProject, data: Mapping[str, Any], systems: Sequence[str] | None = None
) -> FinancingProject:
    """Change a draft or published project's data (closed projects are final)."""
    _require_owner_side(user, project)
    if project.state == State.CLOSED:
        raise DomainError("wrong_state", gettext("The project is closed; it can no longer be changed."))
    data = {"owner_org": f"org:{project.owner_org_id}" if project.owner_org_id else "", **data}
    clean = _clean_project(user, data, systems=systems)
    linked = clean.pop("systems", None)
    clean.pop("owner_org"), clean.pop("kind")
    with transaction.atomic():
        locked = FinancingProject.objects.select_for_update().get(pk=project.pk)
        if locked.self_consumption_share != clean["self_consumption_share"]:
            locked.assumptions = {
                **(locked.assumptions or {}),
                "self_consumption_percent": _fmt(clean["self_consumption_share"] * 100),
            }
        for k, v in clean.items():
            setattr(locked, k, v)
        locked.save()
        if linked is not None:
            locked.systems.set(linked)
    return locked


def do_save_assumptions(user: Any, project: FinancingProject, values: Mapping[str, Any]) -> FinancingProject:
    """Save the owner's assumptions on the project (shown to financiers); refused values change nothing."""
    _require_owner_side(user, project)
    if project.state == State.CLOSED:
        raise DomainError("wrong_state", gettext("The project is closed; it can no longer be changed."))
    defaults, _versions = default_assumptions(project.kind, project.self_consumption_share)
    new = parse_assumptions(values, {**defaults, **(project.assumptions or {})})
    with transaction.atomic():
        locked = FinancingProject.objects.select_for_update().get(pk=project.pk)
        locked.assumptions = new
        locked.self_consumption_share = Decimal(new["self_consumption_percent"]) / 100
        locked.save(update_fields=["assumptions", "self_consumption_share", "updated_at"])
    return locked


def do_publish(user: Any, project: FinancingProject) -> FinancingProject:
    """Draft → published: financiers can see it and express interest."""
    _require_owner_side(user, project)
    with transaction.atomic():
        locked = FinancingProject.objects.select_for_update().get(pk=project.pk)
        if locked.state != State.DRAFT:
            raise DomainError(
                "wrong_state",
                gettext("Only a draft can be published; this project is “%(state)s”.")
                % {"state": locked.get_state_display()},
            )
        calculate(locked)  # a project whose numbers cannot be computed is not published
        locked.state = State.PUBLISHED
        locked.published_at = timezone.now()
        locked.save(update_fields=["state", "published_at", "updated_at"])
    return locked


def do_close(user: Any, project: FinancingProject) -> FinancingProject:
    """Draft or published → closed (financed, or no longer sought). The owner's side or an administrator."""
    if not (is_owner_side(user, project) or user.is_registry_admin):
        raise DomainError("not_allowed", gettext("Only the project's owner may do this."))
    with transaction.atomic():
        locked = FinancingProject.objects.select_for_update().get(pk=project.pk)
        if locked.state == State.CLOSED:
            raise DomainError("wrong_state", gettext("The project is already closed."))
        locked.state = State.CLOSED
        locked.closed_at = timezone.now()
        locked.save(update_fields=["state", "closed_at", "updated_at"])
        for recipient in User.objects.filter(financing_interests__project=locked).distinct():
            _notify(
                recipient,
                _("Project %(code)s “%(name)s” was closed by its owner."),
                {"code": locked.code, "name": locked.name},
                locked,
            )
    return locked


# ---------------------------------------------------------------------------------------------------------------
# interest (leads)


def do_express_interest(user: Any, project: FinancingProject, data: Mapping[str, Any]) -> Interest:
    """A financier's interest in a published project; the owner's side is notified."""
    if not is_financier(user):
        raise DomainError("not_allowed", gettext("Only financiers express interest in projects."))
    problems: list[Problem] = []
    message = str(data.get("message") or "").strip()
    if not message:
        problems.append(_p("message", _("this field is required")))
    elif len(message) > 4000:
        problems.append(_p("message", _("at most %(max)s characters"), max=4000))
    amount = parse_decimal(
        problems,
        "amount_cny",
        data.get("amount_cny"),
        low=Decimal(0),
        low_open=True,
        high=Decimal("999999999999"),
    )
    terms = str(data.get("terms") or "").strip()
    if len(terms) > 4000:
        problems.append(_p("terms", _("at most %(max)s characters"), max=4000))
    if problems:
        raise FinanceInvalid(problems)
    with transaction.atomic():
        locked = FinancingProject.objects.select_for_update().get(pk=project.pk)
        if locked.state != State.PUBLISHED:
            raise DomainError(
                "wrong_state",
                gettext("Interest can only be expressed in a published project; this one is “%(state)s”.")
                % {"state": locked.get_state_display()},
            )
        if Interest.objects.filter(project=locked, financier=user).exists():
            raise DomainError(
                "already_interested",
                gettext("You have already expressed interest in %(code)s.") % {"code": locked.code},
            )
        try:
            with transaction.atomic():
                interest = Interest.objects.create(
                    project=locked,
                    financier=user,
                    financier_org=financier_org(user),
                    message=message,
                    amount_cny=amount,
                    terms=terms,
                )
        except IntegrityError:
            raise DomainError(
                "already_interested",
                gettext("You have already expressed interest in %(code)s.") % {"code": locked.code},
            )
        for recipient in _owner_side_users(locked):
            _notify(
                recipient,
                _("%(financier)s is interested in financing %(code)s “%(name)s”: %(amount)s CNY offered."),
                {
                    "financier": interest.financier_label,
                    "code": locked.code,
                    "name": locked.name,
                    "amount": f"{amount:,.2f}",
                },
                locked,
            )
    return interest


def _owner_side_users(project: FinancingProject) -> list[User]:
    users = {project.owner_user_id: project.owner_user}
    if project.owner_org_id:
        for g in RoleGrant.objects.filter(
            organisation_id=project.owner_org_id, role__in=list(OWNER_ROLE_KINDS), user__is_active=True
        ).select_related("user"):
            users[g.user_id] = g.user
    return [u for u in users.values() if u is not None]


def _notify(
    user: Any, message: Any, args: Mapping[str, Any], project: FinancingProject | None
) -> Notification:
    lang = getattr(user, "preferred_language", "") or "zh-hans"
    with translation.override(lang):
        text = str(message) % dict(args)
    if len(text) > NOTIFICATION_MAX:
        text = text[: NOTIFICATION_MAX - 1] + "…"
    link = reverse("finance:project_detail", args=[project.code]) if project is not None else ""
    return Notification.objects.create(user=user, message=text, link=link)


# ---------------------------------------------------------------------------------------------------------------
# pipeline (administrators)


@dataclass(frozen=True)
class StageRow:
    state: str
    label: str
    projects: int
    amount_cny: Decimal
    leads: int
    offered_cny: Decimal


def pipeline(user: Any) -> dict[str, Any]:
    """Projects by stage with amounts sought, leads and amounts offered; every project with its lead count."""
    if not user.is_registry_admin:
        raise DomainError("not_allowed", gettext("Only administrators see the financing pipeline."))
    stages = []
    for state, label in State.choices:
        qs = FinancingProject.objects.filter(state=state)
        agg = qs.aggregate(n=Count("pk"), amount=Sum("amount_cny"))
        leads = Interest.objects.filter(project__state=state).aggregate(
            n=Count("pk"), offered=Sum("amount_cny")
        )
        stages.append(
            StageRow(
                state,
                str(label),
                agg["n"] or 0,
                agg["amount"] or Decimal(0),
                leads["n"] or 0,
                leads["offered"] or Decimal(0),
            )
        )
    projects = (
        FinancingProject.objects.select_related("owner_user", "owner_org", "community")
        .annotate(lead_count=Count("interests"), offered=Sum("interests__amount_cny"))
        .order_by("state", "-created_at")
    )
    leads = Interest.objects.select_related("project", "financier", "financier_org").order_by("-created_at")[
        :50
    ]
    return {
        "stages": stages,
        "projects": projects,
        "leads": leads,
        "pending_financiers": pending_financiers(),
        "totals": {
            "projects": sum(s.projects for s in stages),
            "amount_cny": sum((s.amount_cny for s in stages), Decimal(0)),
            "leads": sum(s.leads for s in stages),
            "offered_cny": sum((s.offered_cny for s in stages), Decimal(0)),
        },
    }


# ---------------------------------------------------------------------------------------------------------------
# financier sign-up (an administrator approves: the account stays inactive until then)


def pending_financiers() -> QuerySet[User]:
    return (
        User.objects.filter(role_grants__role=Role.FINANCIER, is_active=False, last_login__isnull=True)
        .prefetch_related("memberships__organisation")
        .distinct()
        .order_by("date_joined")
    )


def do_register_financier(data: Mapping[str, Any]) -> User:
    """A financial institution and its first user; the user cannot log in until an administrator approves."""
    problems: list[Problem] = []
    fields = {}
    for name, limit in (("org_name", 200), ("username", 150), ("real_name", 100), ("phone", 30)):
        value = str(data.get(name) or "").strip()
        if not value:
            problems.append(_p(name, _("this field is required")))
        elif len(value) > limit:
            problems.append(_p(name, _("at most %(max)s characters"), max=limit))
        fields[name] = value
    credit_code = str(data.get("credit_code") or "").strip().upper()
    if credit_code and (len(credit_code) != 18 or not credit_code.isalnum()):
        problems.append(_p("credit_code", _("a unified social credit code has 18 letters and digits")))
    elif credit_code and Organisation.objects.filter(credit_code=credit_code).exists():
        problems.append(_p("credit_code", _("an organisation with this code is already registered")))
    if fields["username"] and User.objects.filter(username__iexact=fields["username"]).exists():
        problems.append(_p("username", _("this user name is taken")))
    password = str(data.get("password") or "")
    if not password:
        problems.append(_p("password", _("this field is required")))
    else:
        try:
            validate_password(password, User(username=fields["username"], real_name=fields["real_name"]))
        except ValidationError as exc:
            problems.append(_p("password", " ".join(str(m) for m in exc.messages)))
    if problems:
        raise FinanceInvalid(problems)
    with transaction.atomic():
        org = Organisation.objects.create(
            name=fields["org_name"],
            kind=Organisation.Kind.FINANCIAL,
            credit_code=credit_code,
            contact_phone=fields["phone"],
        )
        user = User.objects.create_user(
            username=fields["username"],
            password=password,
            real_name=fields["real_name"],
            phone=fields["phone"],
            is_active=False,
        )
        RoleGrant.objects.create(user=user, role=Role.FINANCIER, organisation=org)
        Membership.objects.create(user=user, organisation=org, level=Membership.Level.ADMIN)
        admins = User.objects.filter(
            Q(role_grants__role=Role.REGISTRY_ADMIN) | Q(is_superuser=True), is_active=True
        ).distinct()
        for admin in admins:
            _notify(
                admin,
                _("Financier sign-up waiting for approval: %(org)s (%(user)s)."),
                {"org": org.name, "user": user.username},
                None,
            )
    return user


def do_approve_financier(admin: Any, user_id: int) -> User:
    """Activate a signed-up financier (administrators only)."""
    if not admin.is_registry_admin:
        raise DomainError("not_allowed", gettext("Only administrators approve financiers."))
    with transaction.atomic():
        user = pending_financiers().filter(pk=user_id).first()
        if user is None:
            raise DomainError("not_found", gettext("No financier sign-up waiting for approval with this id."))
        User.objects.filter(pk=user.pk).update(is_active=True)
        user.is_active = True
        _notify(
            user, _("Your financier account was approved; you can now browse published projects."), {}, None
        )
    return user


# ---------------------------------------------------------------------------------------------------------------
# rooftop potential estimator (public; saves nothing)


@dataclass(frozen=True)
class EstimateInput:
    roofs: list[rt.Roof]
    packing: Decimal
    community: Community | None
    capex: Decimal
    performance_ratio: Decimal


@dataclass(frozen=True)
class Estimate:
    park: rt.ParkEstimate
    input: EstimateInput
    grid_factor_code: str
    grid_factor: Decimal
    lat: Decimal
    lon: Decimal


def estimator_defaults() -> dict[str, str]:
    return {
        "packing_m2_per_kwp": _fmt(get_parameter(PACKING_KEY).value),
        "capex_cny_per_kwp": _fmt(get_parameter("finance.capex_per_kwp").value),
        "performance_ratio": _fmt(get_parameter("finance.performance_ratio").value),
    }


def parse_estimate(rows: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> EstimateInput:
    """Roof rows (name, area_m2, tilt_deg, azimuth_deg; blank rows skipped) and the parameters of the estimate."""
    problems: list[Problem] = []
    defaults = estimator_defaults()
    packing = parse_decimal(
        problems,
        "packing_m2_per_kwp",
        params.get("packing_m2_per_kwp") or defaults["packing_m2_per_kwp"],
        low=rt.PACKING_MIN,
        high=rt.PACKING_MAX,
    )
    capex = parse_decimal(
        problems,
        "capex_cny_per_kwp",
        params.get("capex_cny_per_kwp") or defaults["capex_cny_per_kwp"],
        low=Decimal(0),
        low_open=True,
        high=Decimal(50000),
    )
    pr = parse_decimal(
        problems,
        "performance_ratio",
        params.get("performance_ratio") or defaults["performance_ratio"],
        low=PR_LOW,
        high=PR_HIGH,
    )
    code = str(params.get("community") or "").strip()
    community = Community.objects.filter(code=code).first() if code else None
    if code and community is None:
        problems.append(_p("community", _("unknown community “%(value)s”"), value=code[:40]))
    roofs: list[rt.Roof] = []
    for i, row in enumerate(rows):
        if all(str(row.get(k) or "").strip() == "" for k in ("name", "area_m2")):
            continue
        n = i + 1
        before = len(problems)
        name = str(row.get("name") or "").strip()[:100] or gettext("Building %(n)s") % {"n": n}
        area = parse_decimal(
            problems, "area_m2", row.get("area_m2"), low=Decimal(0), low_open=True, high=rt.MAX_AREA_M2
        )
        tilt = parse_decimal(
            problems, "tilt_deg", row.get("tilt_deg") or DEFAULT_TILT, low=Decimal(0), high=Decimal(90)
        )
        az = parse_decimal(
            problems,
            "azimuth_deg",
            row.get("azimuth_deg") or DEFAULT_AZIMUTH,
            low=Decimal(0),
            high=Decimal(360),
        )
        if len(problems) > before:
            for k in range(before, len(problems)):
                p = problems[k]
                problems[k] = Problem(
                    p.field,
                    gettext("Row %(n)s (%(name)s): %(message)s")
                    % {"n": n, "name": name, "message": p.message},
                )
            continue
        assert area is not None and tilt is not None and az is not None
        roofs.append(rt.Roof(name, area, tilt, az))
    if len(roofs) > MAX_ROOFS:
        problems.append(_p("area_m2", _("at most %(max)s buildings"), max=MAX_ROOFS))
    if not roofs and not problems:
        problems.append(_p("area_m2", _("enter at least one building with its usable roof area")))
    if problems:
        raise FinanceInvalid(problems)
    assert packing is not None and capex is not None and pr is not None
    return EstimateInput(roofs, packing, community, capex, pr)


def estimate(data: EstimateInput) -> Estimate:
    """Potential of every roof and the sum (nothing is saved)."""
    factor, ef = current_grid_factor()
    if data.community is not None:
        lat, lon = Decimal(data.community.latitude), Decimal(data.community.longitude)
    else:
        lat, lon = town_centre()

    def specific(tilt: Decimal, azimuth: Decimal) -> Decimal:
        return (clear_sky_yield(lat, lon, tilt, azimuth) * data.performance_ratio).quantize(Decimal("0.1"))

    park = rt.estimate(data.roofs, data.packing, specific, ef, data.capex)
    return Estimate(park, data, factor.code, ef, lat, lon)


def do_project_from_estimate(user: Any, est: Estimate, data: Mapping[str, Any]) -> FinancingProject:
    """Turn an estimate into a draft financing project of a logged-in owner: area and kWp summed, orientation of
    the largest roof, the investment as the amount sought unless another amount is given."""
    if not may_publish(user):
        raise DomainError(
            "not_allowed",
            gettext("Only enterprise or institution owners and aggregators publish financing needs."),
        )
    largest = max(est.park.roofs, key=lambda r: r.roof.area_m2)
    lines = [
        gettext("%(name)s: %(area)s m², %(kwp)s kWp")
        % {"name": r.roof.name, "area": _fmt(r.roof.area_m2), "kwp": _fmt(r.capacity_kwp)}
        for r in est.park.roofs
    ]
    description = str(data.get("description") or "").strip()
    description = (
        (description + "\n\n" if description else "")
        + gettext("From the rooftop potential estimate:")
        + "\n"
        + "\n".join(lines)
    )
    payload = {
        "name": data.get("name"),
        "community": est.input.community.code if est.input.community else data.get("community"),
        "roof_area_m2": _fmt(est.park.area_m2),
        "capacity_kwp": _fmt(est.park.capacity_kwp),
        "amount_cny": data.get("amount_cny") or _fmt(est.park.investment_cny),
        "financing_type": data.get("financing_type"),
        "tilt_deg": _fmt(largest.roof.tilt_deg),
        "azimuth_deg": _fmt(largest.roof.azimuth_deg),
        "description": description[:5000],
        "owner_org": data.get("owner_org") or "",
    }
    project = do_create_project(user, payload)
    changes = {
        "capex_cny_per_kwp": _fmt(est.input.capex),
        "performance_ratio": _fmt(est.input.performance_ratio),
    }
    return do_save_assumptions(user, project, changes)


def systems_for_linking(user: Any) -> QuerySet[PVSystem]:
    return access.managed_systems(user).order_by("code")
