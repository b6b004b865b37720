"""Eligibility of a PV system and a monitoring period for a PHCER claim, as a checklist and as month refusals.

Conditions (domain.md §2.2, §2.5, §2.7, §2.8, §4.6): the applicant may claim the system (its owner, or an aggregator
holding the owner's consent); the system is grid-connected, lies inside Zhongshan and is within the methodology's
capacity limit; metering evidence is on file; no month of the period is claimed in another programme (CCER, green
certificates ...) or in another live application; every month lies after the grid connection and after the
methodology took effect, has no open reject-level plausibility flag and has a current quantification result.

Pure Python: the caller gathers the facts; every item carries a stable code, a status and plain arguments, and the
caller turns them into translated sentences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Final

from lowcarbon.core.domain.units import month_start, next_month
from lowcarbon.pv.domain.registration import METERING_CHOICES, ZHONGSHAN_BBOX

# statuses
PASS: Final = "pass"
FAIL: Final = "fail"
MISSING: Final = "missing"

# checklist item codes, in display order
APPLICANT_MAY_CLAIM: Final = "applicant_may_claim"
GRID_CONNECTED: Final = "grid_connected"
IN_ZHONGSHAN: Final = "in_zhongshan"
CAPACITY_WITHIN_LIMIT: Final = "capacity_within_limit"
METERING_EVIDENCE: Final = "metering_evidence"
NO_OTHER_PROGRAMME: Final = "no_other_programme"
AFTER_GRID_CONNECTION: Final = "after_grid_connection"
AFTER_METHODOLOGY: Final = "after_methodology"
PLAUSIBILITY_CLEARED: Final = "plausibility_cleared"
QUANTIFIED: Final = "quantified"
NOT_CLAIMED: Final = "not_claimed"

ITEM_CODES: Final = (
    APPLICANT_MAY_CLAIM,
    GRID_CONNECTED,
    IN_ZHONGSHAN,
    CAPACITY_WITHIN_LIMIT,
    METERING_EVIDENCE,
    NO_OTHER_PROGRAMME,
    AFTER_GRID_CONNECTION,
    AFTER_METHODOLOGY,
    PLAUSIBILITY_CLEARED,
    QUANTIFIED,
    NOT_CLAIMED,
)
#: items that do not stop an application from being created (the reviewer weighs them)
ADVISORY_ITEMS: Final = frozenset({METERING_EVIDENCE})

# month refusal reason codes, in the order they are tested
BEFORE_GRID_CONNECTION: Final = "before_grid_connection"
BEFORE_METHODOLOGY: Final = "before_methodology"
OTHER_PROGRAMME: Final = "other_programme"
PLAUSIBILITY_FLAG: Final = "plausibility_flag"
NOT_QUANTIFIED: Final = "not_quantified"
ALREADY_CLAIMED: Final = "already_claimed"

MONTH_REASONS: Final = (
    BEFORE_GRID_CONNECTION,
    BEFORE_METHODOLOGY,
    OTHER_PROGRAMME,
    PLAUSIBILITY_FLAG,
    NOT_QUANTIFIED,
    ALREADY_CLAIMED,
)

#: evidence kinds that document the metering (Evidence.Kind values): a meter photo or a settlement statement
METERING_EVIDENCE_KINDS: Final = frozenset({"meter_photo", "settlement"})
GRID_ACCEPTANCE_KIND: Final = "grid_acceptance"

# applicant relations
OWNER: Final = "owner"
AGGREGATOR: Final = "aggregator"
NONE: Final = "none"


@dataclass(frozen=True)
class OtherClaim:
    """A period of the system's generation claimed in another programme."""

    programme: str
    start: date
    end: date
    reference: str = ""

    def overlaps_month(self, month: date) -> bool:
        first = month_start(month)
        return self.start < next_month(first) and self.end >= first


@dataclass(frozen=True)
class ApplicantRelation:
    """How the person stands to the system: OWNER, AGGREGATOR (with a live consent) or NONE."""

    kind: str
    consent_document: str = ""
    credit_to_aggregator: bool = False


@dataclass(frozen=True)
class SystemFacts:
    """Everything the checks need about one system; months are first days of months."""

    code: str
    grid_connection_date: date | None
    latitude: Decimal | None
    longitude: Decimal | None
    capacity_kwp: Decimal | None
    capacity_limit_kwp: Decimal
    metering: str
    today: date
    evidence_kinds: frozenset[str] = frozenset()
    other_claims: tuple[OtherClaim, ...] = ()
    methodology_start: date | None = None
    quantified_months: frozenset[date] = frozenset()
    reject_flag_months: frozenset[date] = frozenset()
    warn_flag_months: frozenset[date] = frozenset()
    claimed_months: Mapping[date, str] = field(default_factory=dict)  # month → code of the live application


@dataclass(frozen=True)
class CheckItem:
    """One checklist line: stable code, PASS / FAIL / MISSING, months concerned and arguments for the message."""

    code: str
    status: str
    months: tuple[date, ...] = ()
    args: Mapping[str, str] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.status != PASS and self.code not in ADVISORY_ITEMS


@dataclass(frozen=True)
class MonthRefusal:
    """A month of the period that cannot be claimed, with the first reason that applies."""

    month: date
    code: str
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefusedSpan:
    """Consecutive months refused for the same reason (for messages: 'PV-000003, 2025-03 to 2025-06: ...')."""

    first: date
    last: date
    code: str
    args: Mapping[str, str] = field(default_factory=dict)


def months_between(first: date, last: date) -> list[date]:
    """First days of the months from `first` to `last`, both included (empty when last < first)."""
    out = []
    m = month_start(first)
    end = month_start(last)
    while m <= end:
        out.append(m)
        m = next_month(m)
    return out


def fmt_month(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def _months_text(months: Iterable[date]) -> str:
    spans = []
    for first, last in _spans(sorted(set(months))):
        spans.append(fmt_month(first) if first == last else f"{fmt_month(first)}…{fmt_month(last)}")
    return ", ".join(spans)


def _spans(months: Sequence[date]) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for m in months:
        if out and next_month(out[-1][1]) == m:
            out[-1] = (out[-1][0], m)
        else:
            out.append((m, m))
    return out


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def month_refusal(facts: SystemFacts, month: date) -> MonthRefusal | None:
    """Why `month` of this system cannot be claimed (the first reason in MONTH_REASONS order), or None."""
    month = month_start(month)
    if facts.grid_connection_date is None or month < month_start(facts.grid_connection_date):
        first = fmt_month(month_start(facts.grid_connection_date)) if facts.grid_connection_date else ""
        return MonthRefusal(month, BEFORE_GRID_CONNECTION, {"first": first})
    if facts.methodology_start is None or month < month_start(facts.methodology_start):
        first = fmt_month(month_start(facts.methodology_start)) if facts.methodology_start else ""
        return MonthRefusal(month, BEFORE_METHODOLOGY, {"first": first})
    for claim in facts.other_claims:
        if claim.overlaps_month(month):
            return MonthRefusal(
                month,
                OTHER_PROGRAMME,
                {
                    "programme": claim.programme,
                    "start": claim.start.isoformat(),
                    "end": claim.end.isoformat(),
                    "reference": claim.reference,
                },
            )
    if month in facts.reject_flag_months:
        return MonthRefusal(month, PLAUSIBILITY_FLAG)
    if month not in facts.quantified_months:
        return MonthRefusal(month, NOT_QUANTIFIED)
    if month in facts.claimed_months:
        return MonthRefusal(month, ALREADY_CLAIMED, {"application": facts.claimed_months[month]})
    return None


def month_refusals(facts: SystemFacts, first: date, last: date) -> list[MonthRefusal]:
    """Every month of [first, last] that cannot be claimed, with its reason."""
    out = []
    for m in months_between(first, last):
        r = month_refusal(facts, m)
        if r is not None:
            out.append(r)
    return out


def group_refusals(refusals: Sequence[MonthRefusal]) -> list[RefusedSpan]:
    """Consecutive months with the same reason and arguments merged into spans, in month order."""
    out: list[RefusedSpan] = []
    for r in sorted(refusals, key=lambda r: r.month):
        last = out[-1] if out else None
        if (
            last is not None
            and last.code == r.code
            and dict(last.args) == dict(r.args)
            and next_month(last.last) == r.month
        ):
            out[-1] = RefusedSpan(last.first, r.month, r.code, last.args)
        else:
            out.append(RefusedSpan(r.month, r.month, r.code, r.args))
    return out


def claimable_months(facts: SystemFacts, first: date, last: date) -> list[date]:
    """The months of [first, last] that pass every month-level condition."""
    return [m for m in months_between(first, last) if month_refusal(facts, m) is None]


def checklist(facts: SystemFacts, relation: ApplicantRelation, first: date, last: date) -> list[CheckItem]:
    """The checklist of one system for the period [first, last] (months), in ITEM_CODES order."""
    months = months_between(first, last)
    items: list[CheckItem] = []

    # who applies
    if relation.kind == OWNER:
        items.append(CheckItem(APPLICANT_MAY_CLAIM, PASS, args={"as": OWNER}))
    elif relation.kind == AGGREGATOR:
        items.append(
            CheckItem(
                APPLICANT_MAY_CLAIM,
                PASS,
                args={
                    "as": AGGREGATOR,
                    "document": relation.consent_document,
                    "credit": AGGREGATOR if relation.credit_to_aggregator else OWNER,
                },
            )
        )
    else:
        items.append(CheckItem(APPLICANT_MAY_CLAIM, FAIL, args={"as": NONE}))

    # the system
    gcd = facts.grid_connection_date
    acceptance = "yes" if GRID_ACCEPTANCE_KIND in facts.evidence_kinds else "no"
    if gcd is None:
        items.append(CheckItem(GRID_CONNECTED, MISSING, args={"acceptance": acceptance}))
    elif gcd > facts.today:
        items.append(
            CheckItem(GRID_CONNECTED, FAIL, args={"date": gcd.isoformat(), "acceptance": acceptance})
        )
    else:
        items.append(
            CheckItem(GRID_CONNECTED, PASS, args={"date": gcd.isoformat(), "acceptance": acceptance})
        )

    if facts.latitude is None or facts.longitude is None:
        items.append(CheckItem(IN_ZHONGSHAN, MISSING))
    else:
        inside = ZHONGSHAN_BBOX.contains_lat(facts.latitude) and ZHONGSHAN_BBOX.contains_lon(facts.longitude)
        items.append(
            CheckItem(
                IN_ZHONGSHAN,
                PASS if inside else FAIL,
                args={"lat": _plain(facts.latitude), "lon": _plain(facts.longitude)},
            )
        )

    if facts.capacity_kwp is None:
        items.append(CheckItem(CAPACITY_WITHIN_LIMIT, MISSING))
    else:
        ok = Decimal(0) < facts.capacity_kwp <= facts.capacity_limit_kwp
        items.append(
            CheckItem(
                CAPACITY_WITHIN_LIMIT,
                PASS if ok else FAIL,
                args={"capacity": _plain(facts.capacity_kwp), "limit": _plain(facts.capacity_limit_kwp)},
            )
        )

    metering_docs = sorted(facts.evidence_kinds & METERING_EVIDENCE_KINDS)
    if facts.metering not in METERING_CHOICES:
        items.append(CheckItem(METERING_EVIDENCE, FAIL, args={"metering": facts.metering}))
    elif not metering_docs:
        items.append(CheckItem(METERING_EVIDENCE, MISSING, args={"metering": facts.metering}))
    else:
        items.append(
            CheckItem(
                METERING_EVIDENCE, PASS, args={"metering": facts.metering, "kinds": ",".join(metering_docs)}
            )
        )

    # the period
    period = {"first": fmt_month(month_start(first)), "last": fmt_month(month_start(last))}
    overlapping = [c for c in facts.other_claims if any(c.overlaps_month(m) for m in months)]
    if overlapping:
        hit = [m for m in months if any(c.overlaps_month(m) for c in overlapping)]
        claims = "; ".join(f"{c.programme} {c.start.isoformat()}–{c.end.isoformat()}" for c in overlapping)
        items.append(
            CheckItem(
                NO_OTHER_PROGRAMME,
                FAIL,
                tuple(hit),
                {**period, "claims": claims, "months": _months_text(hit)},
            )
        )
    else:
        items.append(CheckItem(NO_OTHER_PROGRAMME, PASS, args=period))

    before_gc = [m for m in months if gcd is None or m < month_start(gcd)]
    gc_args = {**period, "first_ok": fmt_month(month_start(gcd)) if gcd else ""}
    if gcd is None:
        items.append(CheckItem(AFTER_GRID_CONNECTION, MISSING, args=gc_args))
    elif before_gc:
        items.append(
            CheckItem(
                AFTER_GRID_CONNECTION, FAIL, tuple(before_gc), {**gc_args, "months": _months_text(before_gc)}
            )
        )
    else:
        items.append(CheckItem(AFTER_GRID_CONNECTION, PASS, args=gc_args))

    ms = facts.methodology_start
    before_m = [m for m in months if ms is None or m < month_start(ms)]
    m_args = {**period, "first_ok": fmt_month(month_start(ms)) if ms else ""}
    if ms is None:
        items.append(CheckItem(AFTER_METHODOLOGY, MISSING, args=m_args))
    elif before_m:
        items.append(
            CheckItem(AFTER_METHODOLOGY, FAIL, tuple(before_m), {**m_args, "months": _months_text(before_m)})
        )
    else:
        items.append(CheckItem(AFTER_METHODOLOGY, PASS, args=m_args))

    flagged = [m for m in months if m in facts.reject_flag_months]
    warned = [m for m in months if m in facts.warn_flag_months]
    warn_text = _months_text(warned)
    if flagged:
        items.append(
            CheckItem(
                PLAUSIBILITY_CLEARED,
                FAIL,
                tuple(flagged),
                {**period, "months": _months_text(flagged), "warnings": warn_text},
            )
        )
    else:
        items.append(CheckItem(PLAUSIBILITY_CLEARED, PASS, tuple(warned), {**period, "warnings": warn_text}))

    # months otherwise eligible but without a current result
    unquantified = [
        m
        for m in months
        if m not in facts.quantified_months
        and m not in flagged
        and gcd is not None
        and m >= month_start(gcd)
        and ms is not None
        and m >= month_start(ms)
    ]
    q_args = {**period, "count": str(len([m for m in months if m in facts.quantified_months]))}
    if unquantified:
        items.append(
            CheckItem(
                QUANTIFIED, MISSING, tuple(unquantified), {**q_args, "months": _months_text(unquantified)}
            )
        )
    else:
        items.append(CheckItem(QUANTIFIED, PASS, args=q_args))

    claimed = [m for m in months if m in facts.claimed_months]
    if claimed:
        apps = ", ".join(sorted({facts.claimed_months[m] for m in claimed}))
        items.append(
            CheckItem(
                NOT_CLAIMED,
                FAIL,
                tuple(claimed),
                {**period, "months": _months_text(claimed), "applications": apps},
            )
        )
    else:
        items.append(CheckItem(NOT_CLAIMED, PASS, args=period))
    return items


def ready(items: Iterable[CheckItem]) -> bool:
    """True when no item blocks an application (advisory items aside)."""
    return not any(i.blocking for i in items)
