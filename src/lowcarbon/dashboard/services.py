"""Figures of the dashboards, read from rollups (metering MonthlyRollup/DailyRollup), quantifications and registry
tables, never from raw readings. The public figures are cached briefly (Django cache) so the page stays fast; each
role panel reads only what that person may see (pv.access, registry.applications)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.cache import cache
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from lowcarbon.core.params import param_value
from lowcarbon.dashboard.domain import anonymity, metrics
from lowcarbon.metering.models import (
    DailyRollup,
    IngestBatch,
    Meter,
    MeterReplacement,
    MonthlyRollup,
    QuarantinedRow,
)
from lowcarbon.methodology.models import Quantification
from lowcarbon.pv.models import Community, OwnerType, PlausibilityFlag, PVSystem
from lowcarbon.pv.rollups import SUBJECT_KIND

PUBLIC_CACHE_KEY = "dashboard:public:v1"
#: Seconds the public figures are kept before being computed again.
PUBLIC_CACHE_SECONDS = 60
#: Seconds a person's panel figures are kept (per person and month).
PANEL_CACHE_SECONDS = 30
#: Months shown in the public series at most.
SERIES_MONTHS = 36

IN_PROGRESS_STATES = ("draft", "submitted", "city_review", "verification", "approved", "returned")


#: the versioned parameter (core.Parameter, seeded by core.seed) holding k of the public figures
K_PARAMETER = "dashboard.k_anonymity"


def k_threshold(on: date | None = None) -> int:
    """Minimum number of systems behind any published location, category or figure: the parameter
    `dashboard.k_anonymity` in force on `on` (today), in whole systems, at least 1."""
    return max(1, int(param_value(K_PARAMETER, on)))


def market_stats() -> Any | None:
    """The market's statistics module (lowcarbon.market.stats) once the market app provides it, else None."""
    if not apps.is_installed("lowcarbon.market"):
        return None
    try:
        from lowcarbon.market import stats
    except ImportError:
        return None
    return stats


def trade_model() -> Any | None:
    """market.models.Trade once the market app provides it, else None."""
    if market_stats() is None:
        return None
    try:
        return apps.get_model("market", "Trade")
    except LookupError:
        return None


def _local_day_start(d: date) -> datetime:
    return timezone.make_aware(datetime.combine(d, time.min), timezone.get_default_timezone())


def _month_bounds(first: date) -> tuple[datetime, datetime]:
    return _local_day_start(first), _local_day_start(metrics.add_months(first, 1))


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value  # type: ignore[no-any-return]


def _pv_meters() -> Any:
    return Meter.objects.filter(subject_kind=SUBJECT_KIND)


# ---------------------------------------------------------------------------------------------------------------
# public figures


def public_figures(*, refresh: bool = False) -> dict[str, Any]:
    """The public dashboard's figures (language-neutral), from the cache when fresh. The cache is kept per k, so a
    new version of the k parameter is published at once."""
    k = k_threshold()
    key = f"{PUBLIC_CACHE_KEY}:k{k}"
    if not refresh:
        found = cache.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
    data = compute_public_figures(k=k)
    cache.set(key, data, PUBLIC_CACHE_SECONDS)
    return data


def _num(value: Any) -> float:
    return float(value or 0)


def compute_public_figures(now: datetime | None = None, *, k: int | None = None) -> dict[str, Any]:
    """Capacity and systems by area and owner type (k-anonymous, k from `k_threshold` unless given), and month by
    month: capacity connected, generation metered, avoided emissions quantified, units issued / retired /
    transferred, market volume and prices; with the times the data reach."""
    now = now or timezone.now()
    k = k_threshold() if k is None else k
    today = timezone.localtime(now).date()

    communities = {c.pk: c for c in Community.objects.all()}
    by_comm = (
        PVSystem.objects.values("community_id").annotate(n=Count("id"), cap=Sum("capacity_kwp")).order_by()
    )
    sites = [
        anonymity.Site(
            key=communities[r["community_id"]].code,
            latitude=communities[r["community_id"]].latitude,
            longitude=communities[r["community_id"]].longitude,
            count=r["n"],
            capacity_kwp=r["cap"] or Decimal(0),
        )
        for r in by_comm
    ]
    n_total = sum(s.count for s in sites)
    cap_total = sum((s.capacity_kwp for s in sites), Decimal(0))
    names = {c.code: (c.name_zh, c.name_en) for c in communities.values()}
    areas = [
        {
            "keys": list(a.keys),
            "names_zh": [names[x][0] for x in a.keys],
            "names_en": [names[x][1] for x in a.keys],
            "lat": float(a.latitude),
            "lon": float(a.longitude),
            "systems": a.count,
            "capacity_kwp": float(a.capacity_kwp),
        }
        for a in anonymity.k_anonymous_areas(sites, k)
    ]
    by_type_rows = {
        r["owner_type"]: (r["n"], r["cap"] or Decimal(0))
        for r in PVSystem.objects.values("owner_type")
        .annotate(n=Count("id"), cap=Sum("capacity_kwp"))
        .order_by()
    }
    by_type = anonymity.suppress_categories(
        {t: by_type_rows.get(t, (0, Decimal(0))) for t in OwnerType.values},
        k,
        protected={OwnerType.HOUSEHOLD},
    )

    series = _public_series(today, k)
    stats = market_stats()
    market: dict[str, Any] | None = None
    if stats is not None:
        price = stats.indicative_price()
        totals = stats.totals()
        market = {
            "indicative_price": _num(price) if price is not None else None,
            "volume_t": int(totals.get("volume_t") or 0),
            "value_cny": _num(totals.get("value_cny")),
            "trades": int(totals.get("trades") or 0),
        }

    from lowcarbon.registry.ledger import supply_totals
    from lowcarbon.registry.models import JournalEntry

    pv_meter_ids = _pv_meters().values("id")
    last_day = DailyRollup.objects.filter(meter_id__in=pv_meter_ids).aggregate(d=Max("day"))["d"]
    last_quant = Quantification.objects.aggregate(t=Max("computed_at"))["t"]
    last_journal = JournalEntry.objects.aggregate(t=Max("at"))["t"]
    publish = anonymity.publishable(n_total, k)
    return {
        "computed_at": now.isoformat(),
        "k": k,
        "publishable": publish,
        "totals": {
            "systems": n_total if publish else None,
            "capacity_kwp": float(cap_total) if publish else None,
        },
        "areas": areas,
        "by_owner_type": [
            {
                "key": c.key,
                "systems": c.count,
                "capacity_kwp": None if c.capacity_kwp is None else float(c.capacity_kwp),
            }
            for c in by_type
        ],
        "series": series,
        "supply": supply_totals(),
        "market": market,
        "data_through": {
            "readings_day": last_day.isoformat() if last_day else None,
            "quantified_at": last_quant.isoformat() if last_quant else None,
            "registry_at": last_journal.isoformat() if last_journal else None,
        },
    }


def _month_key(value: Any) -> str:
    d = _as_date(value)
    return f"{d.year:04d}-{d.month:02d}"


def _public_series(today: date, k: int) -> dict[str, Any]:
    """Month-by-month town series. Generation and avoided emissions of a month are published only when at least
    k systems contribute to them."""
    from lowcarbon.registry.ledger import _QTY
    from lowcarbon.registry.models import Retirement, SerialBlock, Transfer

    pv_meter_ids = _pv_meters().values("id")
    gen = {
        _month_key(r["month"]): r
        for r in MonthlyRollup.objects.filter(meter_id__in=pv_meter_ids)
        .values("month")
        .annotate(kwh=Sum("energy"), meters=Count("meter_id"))
        .order_by()
    }
    # a replaced meter adds a second meter to its system: a lower bound of the systems behind a month's figure
    replaced = MeterReplacement.objects.count()
    quant = {
        _month_key(r["month"]): r
        for r in Quantification.objects.filter(superseded_at__isnull=True)
        .values("month")
        .annotate(er=Sum("er_kg"), kwh=Sum("generation_kwh"), n=Count("id"))
        .order_by()
    }
    connected = {
        _month_key(r["m"]): r
        for r in PVSystem.objects.annotate(m=TruncMonth("grid_connection_date"))
        .values("m")
        .annotate(n=Count("id"), cap=Sum("capacity_kwp"))
        .order_by()
    }
    issued = {
        _month_key(r["m"]): int(r["q"] or 0)
        for r in SerialBlock.objects.filter(parent__isnull=True)
        .annotate(m=TruncMonth("created_at"))
        .values("m")
        .annotate(q=Sum(_QTY))
        .order_by()
    }
    retired = {
        _month_key(r["m"]): int(r["q"] or 0)
        for r in Retirement.objects.annotate(m=TruncMonth("retired_on"))
        .values("m")
        .annotate(q=Sum("quantity"))
        .order_by()
    }
    transferred = {
        _month_key(r["m"]): (int(r["q"] or 0), int(r["n"]))
        for r in Transfer.objects.annotate(m=TruncMonth("created_at"))
        .values("m")
        .annotate(q=Sum("quantity"), n=Count("id"))
        .order_by()
    }
    keys = set(gen) | set(quant) | set(issued) | set(retired) | set(transferred)
    current = metrics.month_start(today)
    first = min((metrics.parse_month(x) for x in keys), default=current)
    first = max(first, metrics.add_months(current, -(SERIES_MONTHS - 1)))
    month_list = metrics.months(first, current)

    stats = market_stats()
    market_months: dict[str, metrics.MonthPoint] = {}
    if stats is not None:
        days = [
            metrics.DayPoint(
                day=d["day"],
                open=d.get("open"),
                close=d.get("close"),
                volume_t=int(d.get("volume_t") or 0),
                value_cny=Decimal(str(d.get("value_cny") or 0)),
                trades=int(d.get("trades") or 0),
            )
            for d in stats.daily_series(month_list[0], today)
        ]
        market_months = {_month_key(m.month): m for m in metrics.monthly_market(days)}

    # capacity connected up to each month (cumulative, including systems connected before the window)
    before = PVSystem.objects.filter(grid_connection_date__lt=month_list[0]).aggregate(
        n=Count("id"), cap=Sum("capacity_kwp")
    )
    cum_n, cum_cap = before["n"] or 0, before["cap"] or Decimal(0)
    out: dict[str, list[Any]] = defaultdict(list)
    for m in month_list:
        key = _month_key(m)
        c = connected.get(key)
        if c:
            cum_n += c["n"]
            cum_cap += c["cap"] or Decimal(0)
        out["months"].append(key)
        out["systems"].append(cum_n if anonymity.publishable(cum_n, k) else None)
        out["capacity_kwp"].append(round(float(cum_cap), 3) if anonymity.publishable(cum_n, k) else None)
        g = gen.get(key)
        ok_gen = g is not None and anonymity.publishable(g["meters"] - replaced, k)
        out["generation_kwh"].append(round(_num(g["kwh"]), 1) if g is not None and ok_gen else None)
        q = quant.get(key)
        ok_q = q is not None and anonymity.publishable(q["n"], k)
        out["er_kg"].append(round(_num(q["er"]), 1) if q is not None and ok_q else None)
        out["issued"].append(issued.get(key, 0))
        out["retired"].append(retired.get(key, 0))
        out["transferred"].append(transferred.get(key, (0, 0))[0])
        mp = market_months.get(key)
        out["market_volume_t"].append(mp.volume_t if mp else 0)
        out["market_value_cny"].append(_num(mp.value_cny) if mp else 0.0)
        out["market_trades"].append(mp.trades if mp else 0)
        out["market_close"].append(_num(mp.close) if mp and mp.close is not None else None)
        out["market_avg_price"].append(
            _num(mp.average_price) if mp and mp.average_price is not None else None
        )
    out["suppressed_months"] = [
        out["months"][i]
        for i in range(len(month_list))
        if (out["generation_kwh"][i] is None and out["months"][i] in gen)
        or (out["er_kg"][i] is None and out["months"][i] in quant)
    ]
    return dict(out)


# ---------------------------------------------------------------------------------------------------------------
# panels of the role dashboard


def cached_panel(kind: str, user: Any, month: date | None, compute: Any) -> Any:
    """A role panel's figures for this person, month and language, kept PANEL_CACHE_SECONDS so that reloading the
    dashboard stays cheap (each person's key is their own: nothing is shared between people)."""
    from django.utils.translation import get_language

    key = f"dashboard:panel:{kind}:{user.pk}:{month.isoformat() if month else '-'}:{get_language()}"
    found = cache.get(key)
    if found is None:
        found = compute(user, month)
        cache.set(key, found, PANEL_CACHE_SECONDS)
    return found


# ---------------------------------------------------------------------------------------------------------------
# owner panel


@dataclass
class SystemMonth:
    """One of the person's systems in the shown month: generation metered and the clear-sky bound."""

    system: PVSystem
    generation_kwh: Decimal
    bound_kwh: Decimal | None
    bound_to_date_kwh: Decimal | None
    open_flags: int

    @property
    def ratio_pct(self) -> Decimal | None:
        """Generation as a percentage of the clear-sky bound of the month so far (above 100 is implausible)."""
        if not self.bound_to_date_kwh:
            return None
        return (self.generation_kwh * 100 / self.bound_to_date_kwh).quantize(Decimal("0.1"))

    @property
    def over_bound(self) -> bool:
        return self.bound_to_date_kwh is not None and self.generation_kwh > self.bound_to_date_kwh


@dataclass
class MonthChoice:
    """The month a panel shows and why (the current month, one asked for, or the latest with readings)."""

    month: date
    current: date
    fallback: bool = False

    @property
    def is_current(self) -> bool:
        return self.month == self.current

    @property
    def previous(self) -> date:
        return metrics.add_months(self.month, -1)

    @property
    def next(self) -> date | None:
        n = metrics.add_months(self.month, 1)
        return n if n <= self.current else None


def choose_month(requested: date | None, meter_ids: list[int], now: datetime | None = None) -> MonthChoice:
    """The month asked for; else this month, or the latest month with readings when this month has none yet."""
    current = metrics.month_start(timezone.localtime(now or timezone.now()).date())
    if requested is not None:
        return MonthChoice(min(requested, current), current)
    if not meter_ids or MonthlyRollup.objects.filter(meter_id__in=meter_ids, month=current).exists():
        return MonthChoice(current, current)
    latest = MonthlyRollup.objects.filter(meter_id__in=meter_ids).aggregate(m=Max("month"))["m"]
    if latest is None:
        return MonthChoice(current, current)
    return MonthChoice(metrics.month_start(latest), current, fallback=True)


def owned_systems(user: Any) -> Any:
    """Systems the person owns, directly or through an organisation they belong to."""
    return (
        PVSystem.objects.filter(Q(owner_user=user) | Q(owner_org__memberships__user=user))
        .distinct()
        .select_related("community", "owner_org", "owner_user")
        .order_by("code")
    )


def _elapsed(month: date, now: datetime) -> tuple[int, int]:
    start, end = _month_bounds(month)
    return int((min(max(now, start), end) - start).total_seconds()), int((end - start).total_seconds())


def owner_panel(user: Any, requested: date | None = None, now: datetime | None = None) -> dict[str, Any]:
    """My systems with this month's generation against the clear-sky bound (pv.plausibility), my units with their
    indicative value, my applications."""
    from lowcarbon.pv.plausibility import clear_sky_monthly_bounds
    from lowcarbon.pv.rollups import meters_by_system, monthly_generation
    from lowcarbon.registry.applications import visible_applications

    now = now or timezone.now()
    systems = list(owned_systems(user))
    ids = [s.pk for s in systems]
    meters = meters_by_system(ids)
    choice = choose_month(requested, [m for ms in meters.values() for m in ms], now)
    month = choice.month
    gen = monthly_generation(ids, month, month)
    bounds = clear_sky_monthly_bounds(systems, month.year) if systems else {}
    elapsed, whole = _elapsed(month, now)
    flags = dict(
        PlausibilityFlag.objects.filter(system_id__in=ids, month=month, cleared_at__isnull=True)
        .values("system_id")
        .annotate(n=Count("id"))
        .values_list("system_id", "n")
    )
    rows = []
    for s in systems:
        g = gen.get((s.pk, month))
        b = bounds.get(s.pk)
        month_bound = b[month.month - 1] if b else None
        rows.append(
            SystemMonth(
                system=s,
                generation_kwh=g.energy_kwh if g else Decimal(0),
                bound_kwh=month_bound,
                bound_to_date_kwh=metrics.prorated_bound(month_bound, elapsed, whole)
                if month_bound is not None
                else None,
                open_flags=flags.get(s.pk, 0),
            )
        )
    accounts = _accounts_of(user)
    price = _indicative_price()
    held = sum(a["held"] for a in accounts)
    apps_qs = visible_applications(user).select_related("applicant", "applicant_org").order_by("-created_at")
    return {
        "choice": choice,
        "rows": rows,
        "total_generation_kwh": sum((r.generation_kwh for r in rows), Decimal(0)),
        "total_bound_to_date_kwh": sum((r.bound_to_date_kwh or Decimal(0) for r in rows), Decimal(0)),
        "accounts": accounts,
        "held": held,
        "indicative_price": price,
        "indicative_value": (price * held).quantize(Decimal("0.01")) if price is not None else None,
        "applications": list(apps_qs[:10]),
        "applications_in_progress": apps_qs.filter(state__in=IN_PROGRESS_STATES).count(),
        "market_ready": market_stats() is not None,
    }


def _indicative_price() -> Decimal | None:
    stats = market_stats()
    if stats is None:
        return None
    price = stats.indicative_price()
    return Decimal(str(price)) if price is not None else None


def _accounts_of(user: Any) -> list[dict[str, Any]]:
    """The person's own registry account and those of organisations they belong to, with units held and
    available (accounts are not opened here)."""
    from lowcarbon.registry import ledger
    from lowcarbon.registry.models import RegistryAccount

    accounts = (
        RegistryAccount.objects.filter(Q(owner_user=user) | Q(owner_org__memberships__user=user))
        .distinct()
        .select_related("owner_user", "owner_org")
    )
    return [
        {"account": a, "held": ledger.balance(a), "available": ledger.available(a)}
        for a in accounts.order_by("number")
    ]


# ---------------------------------------------------------------------------------------------------------------
# aggregator panel


@dataclass
class SystemCompleteness:
    system: PVSystem
    completeness: metrics.Completeness
    generation_kwh: Decimal
    meters: int


def completeness_for(
    systems: list[PVSystem], month: date, now: datetime
) -> tuple[list[SystemCompleteness], metrics.Completeness]:
    """Per system: share of the expected interval time covered by accepted readings and share of days with
    readings, over the month so far (from grid connection / meter installation on), from the rollups."""
    ids = [s.pk for s in systems]
    start, end = _month_bounds(month)
    meters = list(
        _pv_meters()
        .filter(subject_id__in=ids)
        .values("id", "subject_id", "installed_at", "removed_at", "interval_minutes")
    )
    monthly = {
        r["meter_id"]: r
        for r in MonthlyRollup.objects.filter(meter_id__in=[m["id"] for m in meters], month=month).values(
            "meter_id", "covered_s", "energy"
        )
    }
    days = dict(
        DailyRollup.objects.filter(
            meter_id__in=[m["id"] for m in meters], day__gte=month, day__lt=metrics.add_months(month, 1)
        )
        .values("meter_id")
        .annotate(n=Count("day"))
        .values_list("meter_id", "n")
    )
    by_system: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for m in meters:
        by_system[m["subject_id"]].append(m)
    out = []
    for s in systems:
        since = _local_day_start(s.grid_connection_date)
        ms = by_system.get(s.pk, [])
        # the system's window: one meter at a time (a replacement hands over), so measure against the system
        window = metrics.expected_window(start, end, now, since)
        covered = sum(int(monthly.get(m["id"], {}).get("covered_s", 0)) for m in ms)
        day_set = sum(days.get(m["id"], 0) for m in ms)
        energy = sum((monthly.get(m["id"], {}).get("energy", Decimal(0)) for m in ms), Decimal(0))
        comp = metrics.Completeness(
            covered_s=covered if ms else 0,
            expected_s=window.seconds,
            days_with_data=day_set,
            days_expected=window.days,
        )
        out.append(SystemCompleteness(s, comp, energy, len(ms)))
    return out, metrics.combine(r.completeness for r in out)


def aggregator_panel(user: Any, requested: date | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The aggregator's portfolio (consented systems), data completeness per system this month, and applications
    in progress."""
    from lowcarbon.pv.access import aggregator_orgs
    from lowcarbon.registry.applications import visible_applications

    now = now or timezone.now()
    orgs = aggregator_orgs(user)
    systems = list(
        PVSystem.objects.filter(consents__aggregator_id__in=orgs, consents__revoked_at__isnull=True)
        .distinct()
        .select_related("community")
        .order_by("code")
    )
    meter_ids = list(_pv_meters().filter(subject_id__in=[s.pk for s in systems]).values_list("id", flat=True))
    choice = choose_month(requested, meter_ids, now)
    rows, total = completeness_for(systems, choice.month, now)
    rows.sort(
        key=lambda r: (r.completeness.interval_pct is None, r.completeness.interval_pct or 0, r.system.code)
    )
    apps_qs = (
        visible_applications(user)
        .filter(state__in=IN_PROGRESS_STATES)
        .select_related("applicant", "applicant_org")
        .order_by("state_since")
    )
    return {
        "choice": choice,
        "systems": len(systems),
        "capacity_kwp": sum((s.capacity_kwp for s in systems), Decimal(0)),
        "generation_kwh": sum((r.generation_kwh for r in rows), Decimal(0)),
        "rows": rows,
        "total": total,
        "applications": list(apps_qs[:20]),
        "applications_count": apps_qs.count(),
    }


# ---------------------------------------------------------------------------------------------------------------
# reviewer panel


def reviewer_panel(user: Any) -> dict[str, Any]:
    """What waits for the reviewer (the registry's review queue, with days waiting) and open plausibility flags."""
    from lowcarbon.registry.applications import reviewer_queue

    queue = reviewer_queue(user)
    flags = PlausibilityFlag.objects.filter(cleared_at__isnull=True)
    return {
        "queue": queue,
        "oldest_days": max((i.days_waiting for i in queue), default=None),
        "open_flags": flags.count(),
        "open_reject_flags": flags.filter(severity=PlausibilityFlag.Severity.REJECT).count(),
    }


# ---------------------------------------------------------------------------------------------------------------
# administrator panel


@dataclass
class SourceLag:
    source: str
    label: str
    last_finished: datetime | None
    lag: timedelta | None
    batches_30d: int
    accepted_30d: int
    rejected_30d: int
    failed_30d: int
    running: int


@dataclass
class MeterLag:
    meter_id: int
    serial: str
    system_code: str
    last_day: date | None
    days_behind: int | None


@dataclass
class AdminPanel:
    sources: list[SourceLag]
    meters_total: int
    meters_current: int
    meters_lagging: list[MeterLag]
    meters_lagging_count: int
    completeness: metrics.Completeness
    month: date
    quarantine_total: int
    quarantine_30d: int
    quarantine_by_reason: list[tuple[str, int, int]]
    last_verification: Any
    verification_age: timedelta | None
    journal_head: int
    entries_since_verification: int | None
    issue_queue: int
    extra: dict[str, Any] = field(default_factory=dict)


#: A meter whose latest reading day is more than this many days before today is reported as lagging.
LAG_DAYS = 2


def admin_panel(user: Any, now: datetime | None = None) -> AdminPanel:
    """Platform health: ingest lag per source and per meter, data completeness this month, the quarantine, and the
    journal's last verification."""
    from lowcarbon.registry.applications import issue_queue
    from lowcarbon.registry.models import JournalEntry, VerificationRun

    now = now or timezone.now()
    today = timezone.localtime(now).date()
    since = now - timedelta(days=30)
    sources = []
    for value, label in IngestBatch.Source.choices:
        qs = IngestBatch.objects.filter(source=value)
        last = qs.filter(status=IngestBatch.Status.DONE).aggregate(t=Max("finished_at"))["t"]
        recent = qs.filter(started_at__gte=since).aggregate(
            n=Count("id"),
            acc=Sum("rows_accepted"),
            rej=Sum("rows_rejected"),
            failed=Count("id", filter=Q(status=IngestBatch.Status.FAILED)),
        )
        sources.append(
            SourceLag(
                source=value,
                label=str(label),
                last_finished=last,
                lag=(now - last) if last else None,
                batches_30d=recent["n"] or 0,
                accepted_30d=recent["acc"] or 0,
                rejected_30d=recent["rej"] or 0,
                failed_30d=recent["failed"] or 0,
                running=qs.filter(status=IngestBatch.Status.RUNNING).count(),
            )
        )
    meters = list(_pv_meters().filter(removed_at__isnull=True).values("id", "serial", "subject_id"))
    last_days = dict(
        DailyRollup.objects.filter(meter_id__in=[m["id"] for m in meters])
        .values("meter_id")
        .annotate(d=Max("day"))
        .values_list("meter_id", "d")
    )
    codes = dict(PVSystem.objects.filter(pk__in=[m["subject_id"] for m in meters]).values_list("pk", "code"))
    lags = []
    for m in meters:
        d = last_days.get(m["id"])
        behind = (today - d).days if d else None
        lags.append(MeterLag(m["id"], m["serial"], codes.get(m["subject_id"], ""), d, behind))
    lagging = [x for x in lags if x.days_behind is None or x.days_behind > LAG_DAYS]
    lagging.sort(key=lambda x: (x.days_behind is not None, -(x.days_behind or 0), x.serial))
    month = metrics.month_start(today)
    systems = list(PVSystem.objects.filter(grid_connection_date__lt=metrics.add_months(month, 1)))
    _rows, total = completeness_for(systems, month, now)
    q_total = QuarantinedRow.objects.count()
    q_recent = QuarantinedRow.objects.filter(batch__started_at__gte=since)
    by_reason = {
        r["reason"]: [r["n"], 0]
        for r in QuarantinedRow.objects.values("reason").annotate(n=Count("id")).order_by()
    }
    for r in q_recent.values("reason").annotate(n=Count("id")).order_by():
        by_reason.setdefault(r["reason"], [0, 0])[1] = r["n"]
    last_run = VerificationRun.objects.order_by("-finished_at", "-pk").first()
    head = JournalEntry.objects.aggregate(s=Max("seq"))["s"] or 0
    return AdminPanel(
        sources=sources,
        meters_total=len(meters),
        meters_current=len(meters) - len(lagging),
        meters_lagging=lagging[:15],
        meters_lagging_count=len(lagging),
        completeness=total,
        month=month,
        quarantine_total=q_total,
        quarantine_30d=q_recent.count(),
        quarantine_by_reason=sorted(
            ((k, v[0], v[1]) for k, v in by_reason.items()), key=lambda t: (-t[1], t[0])
        ),
        last_verification=last_run,
        verification_age=(now - last_run.finished_at) if last_run else None,
        journal_head=head,
        entries_since_verification=(head - last_run.entries) if last_run and last_run.ok else None,
        issue_queue=len(issue_queue(user)),
    )


def first_data_month() -> date | None:
    """The first month with PV readings or quantifications (for report month lists)."""
    pv_meter_ids = _pv_meters().values("id")
    a = MonthlyRollup.objects.filter(meter_id__in=pv_meter_ids).aggregate(m=Min("month"))["m"]
    b = Quantification.objects.aggregate(m=Min("month"))["m"]
    found = [x for x in (a, b) if x is not None]
    return metrics.month_start(min(found)) if found else None
