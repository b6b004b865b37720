"""Applications for PHCER: eligibility checklist and guidance, creation of single and bundled claims, the
no-double-claim commitment, the verification report (核证报告), the review workflow with its timeline and
notifications, the reviewers' queue (domain.md §2.2, §2.6–2.8, §3.2–3.3, §9).

Each `do_*` function authorises the person, runs in one transaction, appends to the registry journal and changes
nothing when it refuses (DomainError with a stable code and a message naming the system, the period and the reason).
Issuance itself is the ledger's (`lowcarbon.registry.ledger.do_issue_units`).
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts.models import Role, RoleGrant, User
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.domain.units import month_start
from lowcarbon.methodology.domain.quantify import parse_month
from lowcarbon.methodology.models import Methodology, Quantification
from lowcarbon.methodology.services import current_quantifications
from lowcarbon.pv import access
from lowcarbon.pv import services as pv_services
from lowcarbon.pv.models import (
    Evidence,
    ManagementConsent,
    OwnerType,
    PlausibilityFlag,
    ProgrammeClaim,
    PVSystem,
)
from lowcarbon.registry import journal, ledger
from lowcarbon.registry.domain import bundle as dbundle
from lowcarbon.registry.domain import eligibility as elig
from lowcarbon.registry.domain import workflow as wf
from lowcarbon.registry.models import (
    Application,
    ApplicationSystem,
    ClaimedMonth,
    Notification,
    RegistryAccount,
    SystemCarry,
    Transition,
)

State = Application.State
Kind = Application.Kind

#: roles that act for an applicant organisation (aggregator, enterprise or institution owner)
APPLICANT_ORG_ROLES = (Role.AGGREGATOR, Role.OWNER_ENTERPRISE, Role.OWNER_INSTITUTION)
#: states of an application whose claims still count but whose units are not issued yet
PENDING_STATES = (
    State.DRAFT,
    State.SUBMITTED,
    State.CITY_REVIEW,
    State.VERIFICATION,
    State.APPROVED,
    State.RETURNED,
)
#: verification reports uploaded by the applicant: PDF only, at most 20 MB
REPORT_MAX_BYTES = 20 * 1024 * 1024
#: notifications are short: longer comments are cut
NOTIFICATION_MAX = 300

# ---------------------------------------------------------------------------------------------------------------
# messages (English msgids; translated when shown)

#: why a month of a system cannot be claimed (codes of lowcarbon.registry.domain.eligibility)
MONTH_REASON_MESSAGES: dict[str, Any] = {
    elig.BEFORE_GRID_CONNECTION: _("before the grid connection (the first month that counts is %(first)s)"),
    elig.BEFORE_METHODOLOGY: _(
        "before the methodology took effect (the first month that counts is %(first)s)"
    ),
    elig.OTHER_PROGRAMME: _(
        "already claimed in another programme: %(programme)s, %(start)s to %(end)s %(reference)s"
    ),
    elig.PLAUSIBILITY_FLAG: _(
        "an open reject-level plausibility flag: the month is not quantified until a reviewer clears it"
    ),
    elig.NOT_QUANTIFIED: _("no current quantification result: no metered generation, or not quantified yet"),
    elig.ALREADY_CLAIMED: _("already claimed by application %(application)s"),
}

#: other refusals of an application, per system or for the whole request
REFUSAL_MESSAGES: dict[str, Any] = {
    "unknown_system": _("unknown system, or not one you may claim"),
    "not_owner": _("you do not own this system; a household bundle is filed by an aggregator"),
    "mixed_owners": _("belongs to another owner than the other systems of the application"),
    "not_household": _("not a household system; enterprises and institutions apply for their own systems"),
    "no_consent": _("the owner has not given %(org)s consent to manage this system"),
    "pending_application": _(
        "application %(application)s (%(state)s) for this system is not issued yet; the kilograms it carries "
        "forward are settled at issuance, so wait for it or withdraw it first"
    ),
    "mixed_methodology": _(
        "quantified with %(methodology)s / %(factor)s, while other months use %(first_methodology)s / "
        "%(first_factor)s; one application uses one methodology version and one factor edition"
    ),
}

ACTION_LABELS: dict[str, Any] = {
    wf.SUBMIT: _("Submit"),
    wf.RESUBMIT: _("Resubmit"),
    wf.WITHDRAW: _("Withdraw"),
    wf.START_REVIEW: _("Start preliminary review"),
    wf.RETURN: _("Return for changes"),
    wf.REJECT: _("Reject"),
    wf.SEND_TO_VERIFICATION: _("Send to verification"),
    wf.COMPLETE_VERIFICATION: _("Record the verification result"),
    wf.APPROVE: _("Approve"),
    wf.ISSUE: _("Issue units"),
}

#: what each step tells the applicant (and, for outcomes, the households of a bundle)
NOTIFICATION_MESSAGES: dict[str, Any] = {
    "created": _("Application %(code)s was created as a draft: %(units)s tCO2e for %(period)s."),
    wf.SUBMIT: _("Application %(code)s was submitted for review."),
    wf.RESUBMIT: _("Application %(code)s was resubmitted for review."),
    wf.WITHDRAW: _("Application %(code)s was withdrawn; its months are free to be claimed again."),
    wf.START_REVIEW: _("The city preliminary review of application %(code)s has started (%(actor)s)."),
    wf.RETURN: _("Application %(code)s was returned for changes: %(comment)s"),
    wf.REJECT: _("Application %(code)s was rejected: %(comment)s"),
    wf.SEND_TO_VERIFICATION: _("Application %(code)s was sent to verification."),
    wf.COMPLETE_VERIFICATION: _("Verification of application %(code)s is complete: %(comment)s"),
    wf.APPROVE: _("Application %(code)s was approved: %(units)s tCO2e will be issued."),
    wf.ISSUE: _("%(units)s tCO2e of application %(code)s were issued."),
    "member": _(
        "Your system %(system)s is part of application %(code)s (%(period)s): %(units)s tCO2e for you."
    ),
    "member_outcome": _("Application %(code)s, which includes your system %(system)s, is now: %(state)s."),
    "to_verify": _("Application %(code)s awaits your verification."),
    "to_issue": _("Application %(code)s is approved and awaits issuance."),
}

WORKFLOW_MESSAGES: dict[str, Any] = {
    wf.UNKNOWN_ACTION: _("Unknown action “%(action)s”."),
    wf.WRONG_STATE: _("“%(action)s” is not possible while the application is “%(state)s”."),
    wf.NOT_ALLOWED: _("You may not “%(action)s” this application."),
    wf.FOUR_EYES: _(
        "Four eyes: the preparer, the reviewer and the issuer of an application must be three different people; "
        "you may not “%(action)s” it."
    ),
    wf.COMMENT_REQUIRED: _("Give the reason or result in the comment to “%(action)s”."),
}

# checklist: title of each item and the sentence for each status
CHECK_TITLES: dict[str, Any] = {
    elig.APPLICANT_MAY_CLAIM: _("You may claim this system"),
    elig.GRID_CONNECTED: _("Grid-connected"),
    elig.IN_ZHONGSHAN: _("Inside Zhongshan"),
    elig.CAPACITY_WITHIN_LIMIT: _("Within the capacity limit"),
    elig.METERING_EVIDENCE: _("Metering evidence on file"),
    elig.NO_OTHER_PROGRAMME: _("Not claimed in another programme (CCER, green certificates)"),
    elig.AFTER_GRID_CONNECTION: _("Period after the grid connection"),
    elig.AFTER_METHODOLOGY: _("Period after the methodology took effect"),
    elig.PLAUSIBILITY_CLEARED: _("Plausibility flags cleared"),
    elig.QUANTIFIED: _("Every month quantified"),
    elig.NOT_CLAIMED: _("Not claimed in another application"),
}

CHECK_DETAILS: dict[tuple[str, str], Any] = {
    (elig.APPLICANT_MAY_CLAIM, "owner"): _("You own this system and may apply for it yourself."),
    (elig.APPLICANT_MAY_CLAIM, "aggregator"): _(
        "The owner's consent (%(document)s) lets your organisation include this system in a bundle; units are "
        "credited to %(credit)s."
    ),
    (elig.APPLICANT_MAY_CLAIM, "none"): _(
        "You are neither the owner nor an aggregator holding the owner's consent: ask the owner to apply, or to "
        "record a consent for your organisation."
    ),
    (elig.GRID_CONNECTED, elig.PASS): _(
        "Grid-connected on %(date)s. Grid-connection acceptance record: %(acceptance)s."
    ),
    (elig.GRID_CONNECTED, elig.FAIL): _("The grid-connection date %(date)s lies in the future."),
    (elig.GRID_CONNECTED, elig.MISSING): _("No grid-connection date is recorded."),
    (elig.IN_ZHONGSHAN, elig.PASS): _("The site (%(lat)s N, %(lon)s E) lies inside Zhongshan."),
    (elig.IN_ZHONGSHAN, elig.FAIL): _(
        "The site (%(lat)s N, %(lon)s E) lies outside Zhongshan; only systems in Zhongshan can apply here."
    ),
    (elig.IN_ZHONGSHAN, elig.MISSING): _("The site's coordinates are missing."),
    (elig.CAPACITY_WITHIN_LIMIT, elig.PASS): _("%(capacity)s kWp, within the limit of %(limit)s kWp."),
    (elig.CAPACITY_WITHIN_LIMIT, elig.FAIL): _(
        "%(capacity)s kWp is above the methodology limit of %(limit)s kWp."
    ),
    (elig.CAPACITY_WITHIN_LIMIT, elig.MISSING): _("The installed capacity is missing."),
    (elig.METERING_EVIDENCE, elig.PASS): _("%(metering)s; evidence on file: %(kinds)s."),
    (elig.METERING_EVIDENCE, elig.MISSING): _(
        "%(metering)s; no meter photo or electricity settlement statement is on file yet. Upload one on the "
        "system's page: the reviewer asks for it."
    ),
    (elig.METERING_EVIDENCE, elig.FAIL): _("The metering arrangement “%(metering)s” is not accepted."),
    (elig.NO_OTHER_PROGRAMME, elig.PASS): _(
        "No CCER, green-certificate or other claim covers %(first)s to %(last)s."
    ),
    (elig.NO_OTHER_PROGRAMME, elig.FAIL): _(
        "Claimed elsewhere (%(claims)s): months %(months)s cannot be claimed again."
    ),
    (elig.AFTER_GRID_CONNECTION, elig.PASS): _(
        "Every month from %(first)s on lies after the grid connection."
    ),
    (elig.AFTER_GRID_CONNECTION, elig.FAIL): _(
        "Months %(months)s lie before the grid connection; the first month that counts is %(first_ok)s."
    ),
    (elig.AFTER_GRID_CONNECTION, elig.MISSING): _("No grid-connection date is recorded."),
    (elig.AFTER_METHODOLOGY, elig.PASS): _(
        "The methodology is in force from %(first_ok)s, before the period."
    ),
    (elig.AFTER_METHODOLOGY, elig.FAIL): _(
        "Months %(months)s lie before the methodology took effect (%(first_ok)s)."
    ),
    (elig.AFTER_METHODOLOGY, elig.MISSING): _("No methodology is on record."),
    (elig.PLAUSIBILITY_CLEARED, elig.PASS): _("No open reject-level plausibility flag in the period."),
    (elig.PLAUSIBILITY_CLEARED, elig.FAIL): _(
        "Months %(months)s have an open reject-level plausibility flag; a reviewer must clear it (with a note) "
        "before they count."
    ),
    (elig.QUANTIFIED, elig.PASS): _("%(count)s months of the period have a current quantification result."),
    (elig.QUANTIFIED, elig.MISSING): _(
        "Months %(months)s have no quantification result: upload their meter readings (they are quantified "
        "automatically)."
    ),
    (elig.NOT_CLAIMED, elig.PASS): _("No month of %(first)s to %(last)s is claimed by another application."),
    (elig.NOT_CLAIMED, elig.FAIL): _("Months %(months)s are already claimed by %(applications)s."),
}

STATUS_LABELS: dict[str, Any] = {
    elig.PASS: _("met"),
    elig.FAIL: _("not met"),
    elig.MISSING: _("missing"),
}

COMMITMENT_TEXT = _(
    "I, %(name)s, as preparer of application %(code)s for %(applicant)s, commit that the generation and emission "
    "reductions of the PV systems listed in it for %(period)s have not been registered, claimed or credited in "
    "the China Certified Emission Reduction (CCER) programme, as green electricity certificates or in any other "
    "greenhouse-gas or renewable-energy programme, and will not be claimed again. Should this prove untrue, the "
    "units issued will be cancelled and returned."
)


def _fmt(template: Any, args: dict[str, Any] | None = None) -> str:
    text = str(template)
    if not args or "%(" not in text:
        return text
    try:
        return text % args
    except (KeyError, ValueError, TypeError):
        return text


def fmt_month(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def fmt_period(first: date, last: date) -> str:
    if month_start(first) == month_start(last):
        return fmt_month(first)
    return gettext("%(first)s to %(last)s") % {"first": fmt_month(first), "last": fmt_month(last)}


def programme_label(code: str) -> str:
    return str(dict(ProgrammeClaim.Programme.choices).get(code, code))


def metering_label(code: str) -> str:
    from lowcarbon.pv.models import MeteringArrangement

    return str(dict(MeteringArrangement.choices).get(code, code))


def month_reason(code: str, args: dict[str, Any] | None = None) -> str:
    """The translated reason a month cannot be claimed."""
    args = dict(args or {})
    if "programme" in args:
        args["programme"] = programme_label(args["programme"])
    if args.get("reference"):
        args["reference"] = f"({args['reference']})"
    return _fmt(MONTH_REASON_MESSAGES.get(code, code), args).strip()


# ---------------------------------------------------------------------------------------------------------------
# refusals


@dataclass(frozen=True)
class Refusal:
    """One reason an application cannot be created: the system, the period (months) and why."""

    system: str
    first: date | None
    last: date | None
    code: str
    reason: str

    @property
    def message(self) -> str:
        where = self.system or gettext("Application")
        if self.first is not None and self.last is not None:
            where = f"{where}, {fmt_period(self.first, self.last)}"
        return f"{where}: {self.reason}"


class ApplicationRefused(DomainError):
    """An application that cannot be created; `refusals` names every system, period and reason found."""

    def __init__(self, refusals: list[Refusal]) -> None:
        first = refusals[0]
        summary = "; ".join(r.message for r in refusals[:20])
        if len(refusals) > 20:
            summary += gettext(" … and %(n)s more.") % {"n": len(refusals) - 20}
        super().__init__(first.code, summary, field="systems")
        self.refusals = refusals


def _refuse(code: str, message: str, field_name: str | None = None) -> DomainError:
    return DomainError(code, message, field=field_name)


# ---------------------------------------------------------------------------------------------------------------
# who is who


def applicant_orgs(user: Any) -> list[int]:
    """Organisations for which the person acts as applicant (aggregator, enterprise or institution owner)."""
    if user is None or not user.is_authenticated:
        return []
    return list(
        RoleGrant.objects.filter(
            user=user, role__in=APPLICANT_ORG_ROLES, organisation__isnull=False
        ).values_list("organisation_id", flat=True)
    )


def is_applicant_side(user: Any, application: Application) -> bool:
    """The preparer, or a person acting for the same applicant organisation."""
    if user is None or not user.is_authenticated:
        return False
    if application.applicant_id == user.pk:
        return True
    return bool(application.applicant_org_id) and application.applicant_org_id in applicant_orgs(user)


def is_verifier(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_role(Role.VERIFIER))


def parties(user: Any, application: Application) -> set[str]:
    """The workflow parties the person belongs to for this application."""
    out: set[str] = set()
    if user is None or not user.is_authenticated:
        return out
    if is_applicant_side(user, application):
        out.add(wf.APPLICANT)
    if user.is_reviewer:
        out.add(wf.REVIEWER)
    if is_verifier(user):
        out.add(wf.VERIFIER)
    if user.is_registry_admin:
        out.add(wf.ISSUER)
    return out


def visible_applications(user: Any) -> QuerySet[Application]:
    """Applications the person may see: reviewers, verifiers and registry administrators all; applicants their own
    and their organisation's; owners those that include one of their systems."""
    if user is None or not user.is_authenticated:
        return Application.objects.none()
    if user.is_reviewer or user.is_registry_admin or is_verifier(user):
        return Application.objects.all()
    cond = (
        Q(applicant=user)
        | Q(applicant_org_id__in=applicant_orgs(user))
        | Q(members__system__owner_user=user)
        | Q(members__system__owner_org__memberships__user=user)
    )
    return Application.objects.filter(cond).distinct()


def get_visible(user: Any, code: str) -> Application:
    """The application with this code if the person may see it; DomainError `not_found` otherwise."""
    app = visible_applications(user).filter(code=code).select_related("applicant", "applicant_org").first()
    if app is None:
        raise DomainError("not_found", gettext("No such application."))
    return app


# ---------------------------------------------------------------------------------------------------------------
# facts for the eligibility checks


def methodology_start() -> date | None:
    """The date the earliest methodology version took effect."""
    first = Methodology.objects.order_by("effective_from").values_list("effective_from", flat=True).first()
    return first


def _live_claims(
    system_ids: Sequence[int], exclude_application: int | None = None
) -> dict[int, dict[date, str]]:
    """{system id: {month: application code}} of the live claims of the systems (other applications)."""
    qs = ClaimedMonth.objects.filter(system_id__in=list(system_ids), live=True)
    if exclude_application is not None:
        qs = qs.exclude(application_id=exclude_application)
    out: dict[int, dict[date, str]] = defaultdict(dict)
    for sid, month, code in qs.values_list("system_id", "month", "application__code"):
        out[sid][month_start(month)] = code
    return out


def _pending_applications(system_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """{system id: [(application code, state)]} of applications including the system that are not issued yet."""
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    rows = ApplicationSystem.objects.filter(
        system_id__in=list(system_ids), application__state__in=list(PENDING_STATES)
    ).values_list("system_id", "application__code", "application__state")
    for sid, code, state in rows:
        out[sid].append((code, state))
    return out


def system_facts(systems: Sequence[PVSystem], first: date, last: date) -> dict[int, elig.SystemFacts]:
    """The eligibility facts of each system for the months [first, last] (a few queries for all systems)."""
    ids = [s.pk for s in systems]
    today = timezone.localdate()
    limit = pv_services.capacity_limit_kwp(today)
    evidence: dict[int, set[str]] = defaultdict(set)
    for sid, kind in Evidence.objects.filter(system_id__in=ids).values_list("system_id", "kind"):
        evidence[sid].add(kind)
    others: dict[int, list[elig.OtherClaim]] = defaultdict(list)
    for c in ProgrammeClaim.objects.filter(system_id__in=ids).order_by("period_start"):
        others[c.system_id].append(elig.OtherClaim(c.programme, c.period_start, c.period_end, c.reference))
    quantified: dict[int, set[date]] = defaultdict(set)
    for sid, month in current_quantifications(ids, first, last).values_list("system_id", "month"):
        quantified[sid].add(month_start(month))
    reject: dict[int, set[date]] = defaultdict(set)
    warn: dict[int, set[date]] = defaultdict(set)
    flags = PlausibilityFlag.objects.filter(
        system_id__in=ids, cleared_at__isnull=True, month__gte=month_start(first), month__lte=last
    ).values_list("system_id", "month", "severity")
    for sid, month, severity in flags:
        (reject if severity == PlausibilityFlag.Severity.REJECT else warn)[sid].add(month_start(month))
    claims = _live_claims(ids)
    m_start = methodology_start()
    return {
        s.pk: elig.SystemFacts(
            code=s.code,
            grid_connection_date=s.grid_connection_date,
            latitude=s.latitude,
            longitude=s.longitude,
            capacity_kwp=s.capacity_kwp,
            capacity_limit_kwp=limit,
            metering=s.metering,
            today=today,
            evidence_kinds=frozenset(evidence.get(s.pk, set())),
            other_claims=tuple(others.get(s.pk, [])),
            methodology_start=m_start,
            quantified_months=frozenset(quantified.get(s.pk, set())),
            reject_flag_months=frozenset(reject.get(s.pk, set())),
            warn_flag_months=frozenset(warn.get(s.pk, set())),
            claimed_months=dict(claims.get(s.pk, {})),
        )
        for s in systems
    }


def _live_consent(system: PVSystem, org_ids: Iterable[int]) -> ManagementConsent | None:
    return (
        ManagementConsent.objects.filter(
            system=system, aggregator_id__in=list(org_ids), revoked_at__isnull=True
        )
        .select_related("aggregator")
        .order_by("-granted_at")
        .first()
    )


def relation(user: Any, system: PVSystem) -> elig.ApplicantRelation:
    """How the person stands to the system for a claim: owner, consented aggregator, or neither."""
    if pv_services.is_system_owner(user, system):
        return elig.ApplicantRelation(elig.OWNER)
    consent = _live_consent(system, access.aggregator_orgs(user))
    if consent is not None:
        return elig.ApplicantRelation(elig.AGGREGATOR, consent.document, consent.credit_to_aggregator)
    return elig.ApplicantRelation(elig.NONE)


# ---------------------------------------------------------------------------------------------------------------
# checklist and guidance


@dataclass(frozen=True)
class CheckRow:
    """One checklist line as shown: code, status, title and the sentence explaining it."""

    code: str
    status: str
    title: str
    detail: str
    blocking: bool
    advisory: bool

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])


@dataclass(frozen=True)
class Checklist:
    """The checklist of one system for a period, with the months that can be claimed."""

    system: PVSystem
    first: date
    last: date
    rows: list[CheckRow]
    claimable: list[date]

    @property
    def ready(self) -> bool:
        return not any(r.blocking for r in self.rows)

    @property
    def period(self) -> str:
        return fmt_period(self.first, self.last)


def _check_detail(item: elig.CheckItem) -> str:
    args: dict[str, Any] = dict(item.args)
    key: tuple[str, str] = (item.code, item.status)
    if item.code == elig.APPLICANT_MAY_CLAIM:
        key = (item.code, args.get("as", "none"))
        if args.get("credit") == elig.AGGREGATOR:
            args["credit"] = gettext("the aggregator")
        elif args.get("credit") == elig.OWNER:
            args["credit"] = gettext("the household")
        args["document"] = args.get("document") or gettext("on record")
    if "acceptance" in args:
        args["acceptance"] = (
            gettext("uploaded") if args["acceptance"] == "yes" else gettext("not uploaded yet")
        )
    if "metering" in args:
        args["metering"] = metering_label(args["metering"])
    if "kinds" in args:
        labels = dict(Evidence.Kind.choices)
        args["kinds"] = "、".join(str(labels.get(k, k)) for k in args["kinds"].split(",") if k)
    if "claims" in args:
        parts = []
        for part in args["claims"].split("; "):
            prog, _sep, span = part.partition(" ")
            parts.append(f"{programme_label(prog)} {span}")
        args["claims"] = "; ".join(parts)
    text = _fmt(CHECK_DETAILS.get(key, item.code), args)
    if item.code == elig.PLAUSIBILITY_CLEARED and args.get("warnings"):
        text += " " + gettext("Open warnings (need a reviewer's note, do not block): %(months)s.") % {
            "months": args["warnings"]
        }
    return text


def default_period(today: date | None = None) -> tuple[date, date]:
    """The last complete calendar year: applications cover one vintage (domain.md §2.7)."""
    today = today or timezone.localdate()
    year = today.year - 1
    return date(year, 1, 1), date(year, 12, 1)


def checklist(
    actor: Any, system: PVSystem, first: date | str | None = None, last: date | str | None = None
) -> Checklist:
    """The eligibility checklist of one system the person may see, for the months [first, last] (default: last
    calendar year), from the system's own data."""
    if not access.visible_systems(actor).filter(pk=system.pk).exists():
        raise DomainError("unknown_system", gettext("Unknown PV system: %(codes)s") % {"codes": system.code})
    d_first, d_last = default_period()
    f = _month(first, "first_month") if first else d_first
    la = _month(last, "last_month") if last else d_last
    if f > la:
        raise _refuse(
            "month_range_reversed", gettext("The first month is after the last month."), "first_month"
        )
    facts = system_facts([system], f, la)[system.pk]
    items = elig.checklist(facts, relation(actor, system), f, la)
    rows = [
        CheckRow(
            code=i.code,
            status=i.status,
            title=str(CHECK_TITLES[i.code]),
            detail=_check_detail(i),
            blocking=i.blocking,
            advisory=i.code in elig.ADVISORY_ITEMS,
        )
        for i in items
    ]
    return Checklist(system, f, la, rows, elig.claimable_months(facts, f, la))


def checklists(actor: Any, systems: Sequence[PVSystem], first: date, last: date) -> list[Checklist]:
    """Checklists of several systems for one period (the guidance page's overview)."""
    facts = system_facts(systems, first, last)
    out = []
    for s in systems:
        items = elig.checklist(facts[s.pk], relation(actor, s), first, last)
        rows = [
            CheckRow(
                i.code,
                i.status,
                str(CHECK_TITLES[i.code]),
                _check_detail(i),
                i.blocking,
                i.code in elig.ADVISORY_ITEMS,
            )
            for i in items
        ]
        out.append(Checklist(s, first, last, rows, elig.claimable_months(facts[s.pk], first, last)))
    return out


@dataclass(frozen=True)
class ApplicantType:
    """A kind of applicant and what applies to it (guidance page and PDF)."""

    code: str
    title: str
    who: str
    extra: list[str]


def applicant_types() -> list[ApplicantType]:
    """The three applicant types and their specific conditions, in the current language."""
    return [
        ApplicantType(
            "household",
            gettext("Household owner"),
            gettext(
                "A resident who owns a rooftop PV system, applying alone or through an aggregator's bundle."
            ),
            [
                gettext("Real-name registration of the owner on the platform."),
                gettext(
                    "Applying alone costs more than the units are worth for most roofs: a bundle filed by an "
                    "aggregator floors the tonnes once for all households."
                ),
                gettext(
                    "To join a bundle, record your consent for the aggregator on your system's page; choose whether "
                    "your units are credited to you or to the aggregator."
                ),
            ],
        ),
        ApplicantType(
            "organisation",
            gettext("Enterprise or institution owner"),
            gettext("A company, school or public body that owns PV systems and applies for its own systems."),
            [
                gettext(
                    "The systems are registered to the organisation; a person acting for it prepares the application."
                ),
                gettext("Units are credited to the organisation's registry account."),
            ],
        ),
        ApplicantType(
            "aggregator",
            gettext("Aggregator (bundle of households)"),
            gettext("A service agency filing one application for many households that consented to it."),
            [
                gettext(
                    "Every household in the bundle has a live consent for the aggregator's organisation."
                ),
                gettext(
                    "The bundle is floored to whole tonnes once; the units are apportioned to the households by "
                    "their kilograms (largest remainder) and each household's leftover is carried forward."
                ),
                gettext(
                    "Units are credited to each household, or to the aggregator where the household's consent "
                    "says so."
                ),
            ],
        ),
    ]


def workflow_steps() -> list[tuple[str, str]]:
    """The steps of an application, for the guidance page and PDF."""
    return [
        (
            gettext("Prepare"),
            gettext(
                "Choose the systems and the monitoring period (months of one calendar year); the platform computes "
                "the claimable tonnes from the quantification results."
            ),
        ),
        (
            gettext("Report and commitment"),
            gettext(
                "Attach a verification report (核证报告), or let the platform draft one from the data (self-prepared "
                "reports are allowed since 2022), and sign the no-double-claim commitment."
            ),
        ),
        (
            gettext("Submit"),
            gettext("The application goes to the city ecology-environment bureau's preliminary review."),
        ),
        (
            gettext("Review"),
            gettext(
                "A reviewer checks the data and may return the application for changes, reject it with a reason, "
                "send it to a verifier, or approve it."
            ),
        ),
        (
            gettext("Issue"),
            gettext(
                "A registry administrator issues the units into the registry accounts. Preparer, reviewer and "
                "issuer are three different people."
            ),
        ),
    ]


def guidance_context() -> dict[str, Any]:
    """What the guidance page and the guidance PDF explain (current language)."""
    return {
        "applicant_types": applicant_types(),
        "conditions": [(code, str(CHECK_TITLES[code])) for code in elig.ITEM_CODES],
        "steps": workflow_steps(),
        "capacity_limit": _plain(pv_services.capacity_limit_kwp()),
        "methodology_start": methodology_start(),
        "methodologies": list(Methodology.objects.order_by("effective_from")),
    }


def guidance_pdf() -> bytes:
    """The downloadable guidance document (PDF) in the current language."""
    html = render_to_string(
        "registry/app_guidance_pdf.html", {**guidance_context(), "today": timezone.localdate()}
    )
    return _pdf(html)


def _pdf(html: str) -> bytes:
    from weasyprint import HTML

    out = io.BytesIO()
    HTML(string=html).write_pdf(out)
    return out.getvalue()


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


# ---------------------------------------------------------------------------------------------------------------
# creating an application


def _month(value: date | str, field_name: str) -> date:
    if isinstance(value, datetime):
        return month_start(value.date())
    if isinstance(value, date):
        return month_start(value)
    try:
        return parse_month(str(value))
    except ValueError:
        raise _refuse(
            "invalid_month",
            gettext("“%(value)s” is not a month; write it as YYYY-MM.") % {"value": value},
            field_name,
        )


def _next_code(vintage: int) -> str:
    prefix = f"APP-{vintage}-"
    last = (
        Application.objects.filter(code__startswith=prefix)
        .order_by("-code")
        .values_list("code", flat=True)
        .first()
    )
    n = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{n:05d}"


def _aggregator_org(actor: Any, systems: Sequence[PVSystem], aggregator_org: Any) -> int:
    """The aggregator organisation the person files the bundle for."""
    orgs = access.aggregator_orgs(actor)
    if aggregator_org is not None:
        org_id = getattr(aggregator_org, "pk", aggregator_org)
        if org_id not in orgs:
            raise _refuse(
                "not_aggregator",
                gettext("You do not act for this aggregator organisation."),
                "aggregator_org",
            )
        return int(org_id)
    if len(orgs) == 1:
        return orgs[0]
    fitting = [
        o
        for o in orgs
        if all(
            ManagementConsent.objects.filter(system=s, aggregator_id=o, revoked_at__isnull=True).exists()
            for s in systems
        )
    ]
    if len(fitting) == 1:
        return fitting[0]
    raise _refuse(
        "aggregator_org_required",
        gettext("Choose the aggregator organisation you file for."),
        "aggregator_org",
    )


def do_create_application(
    actor: Any,
    *,
    system_codes: Sequence[str],
    first_month: date | str,
    last_month: date | str,
    kind: str,
    aggregator_org: Any = None,
) -> Application:
    """Create a draft application: an owner's own systems (kind `single`) or an aggregator's bundle of consenting
    households (kind `bundle`) over months of one calendar year (the vintage). Every month of every system must be
    claimable (after grid connection and the methodology, no other programme, no open reject flag, a current
    quantification, not claimed by another live application); the claim is floored once and apportioned
    (domain/bundle.py). Refusals name every system, period and reason; nothing is saved then."""
    if actor is None or not actor.is_authenticated:
        raise _refuse("not_allowed", gettext("Log in to apply."))
    if kind not in Kind.values:
        raise _refuse(
            "invalid_kind", gettext("Unknown kind of application “%(kind)s”.") % {"kind": kind}, "kind"
        )
    first = _month(first_month, "first_month")
    last = _month(last_month, "last_month")
    if first > last:
        raise _refuse(
            "month_range_reversed", gettext("The first month is after the last month."), "first_month"
        )
    if first.year != last.year:
        raise _refuse(
            "period_spans_years",
            gettext(
                "The period %(period)s spans two calendar years; an application covers one vintage, so apply for "
                "each year separately."
            )
            % {"period": fmt_period(first, last)},
            "last_month",
        )
    if last >= month_start(timezone.localdate()):
        raise _refuse(
            "month_not_over",
            gettext("The month %(month)s is not over yet; claim only complete months.")
            % {"month": fmt_month(last)},
            "last_month",
        )
    codes = list(dict.fromkeys(c.strip() for c in system_codes if c and c.strip()))
    if not codes:
        raise _refuse("no_systems", gettext("Choose at least one PV system."), "systems")
    if kind == Kind.BUNDLE and not actor.is_aggregator:
        raise _refuse("not_aggregator", gettext("Only aggregators file household bundles."), "kind")

    with transaction.atomic():
        found = {
            s.code: s
            for s in access.managed_systems(actor)
            .filter(code__in=codes)
            .select_related("owner_user", "owner_org")
        }
        refusals = [
            Refusal(c, None, None, "unknown_system", str(REFUSAL_MESSAGES["unknown_system"]))
            for c in codes
            if c not in found
        ]
        if refusals:
            raise ApplicationRefused(refusals)
        # serialise claims on these systems (row locks on PostgreSQL; SQLite locks the database on write)
        ids = sorted(s.pk for s in found.values())
        list(
            PVSystem.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        systems = [found[c] for c in codes]

        org_id, consents = _authorise(actor, kind, systems, aggregator_org)
        facts = system_facts(systems, first, last)
        pending = _pending_applications(ids)
        for s in systems:
            month_problems = elig.group_refusals(elig.month_refusals(facts[s.pk], first, last))
            for span in month_problems:
                refusals.append(
                    Refusal(
                        s.code, span.first, span.last, span.code, month_reason(span.code, dict(span.args))
                    )
                )
            if not any(p.code == elig.ALREADY_CLAIMED for p in month_problems):
                for app_code, state in pending.get(s.pk, []):
                    refusals.append(
                        Refusal(
                            s.code,
                            first,
                            last,
                            "pending_application",
                            _fmt(
                                REFUSAL_MESSAGES["pending_application"],
                                {"application": app_code, "state": State(state).label},
                            ),
                        )
                    )
        if refusals:
            raise ApplicationRefused(refusals)

        quants = list(current_quantifications(ids, first, last).select_related("methodology", "factor"))
        head = quants[0]
        for q in quants:
            if q.methodology_id != head.methodology_id or q.factor_id != head.factor_id:
                code = next(s.code for s in systems if s.pk == q.system_id)
                refusals.append(
                    Refusal(
                        code,
                        q.month,
                        q.month,
                        "mixed_methodology",
                        _fmt(
                            REFUSAL_MESSAGES["mixed_methodology"],
                            {
                                "methodology": q.methodology.code,
                                "factor": q.factor.code,
                                "first_methodology": head.methodology.code,
                                "first_factor": head.factor.code,
                            },
                        ),
                    )
                )
        if refusals:
            raise ApplicationRefused(refusals)

        by_system: dict[int, list[Quantification]] = defaultdict(list)
        for q in quants:
            by_system[q.system_id].append(q)
        carry = dict(SystemCarry.objects.filter(system_id__in=ids).values_list("system_id", "kg"))
        claim = dbundle.compute_claim(
            [
                dbundle.MemberInput(
                    s.code,
                    sum((q.er_kg for q in by_system[s.pk]), Decimal(0)),
                    carry.get(s.pk, Decimal(0)),
                )
                for s in systems
            ]
        )
        if claim.units < 1:
            raise _refuse(
                "below_one_tonne",
                gettext(
                    "%(period)s: the reductions of the chosen systems (%(kg)s kg CO2e with carry-in) do not reach "
                    "one whole tonne; add months or households."
                )
                % {"period": fmt_period(first, last), "kg": _plain(claim.kg)},
                "systems",
            )

        app = _insert_application(actor, kind, org_id, systems, first, last, head, claim)
        for s in systems:
            share = claim.member(s.code)
            consent = consents.get(s.pk)
            to_aggregator = consent is not None and consent.credit_to_aggregator
            account = _credit_account(s, consent)
            months = sorted(by_system[s.pk], key=lambda q: q.month)
            computation = {
                **dbundle.explanation(claim, s.code),
                "credit": "aggregator" if to_aggregator else ("organisation" if s.owner_org_id else "owner"),
                "consent_document": consent.document if consent else "",
                "months": [
                    {
                        "month": fmt_month(q.month),
                        "generation_kwh": str(q.generation_kwh),
                        "ef_cm": str(q.ef_cm),
                        "er_kg": str(q.er_kg),
                    }
                    for q in months
                ],
            }
            ApplicationSystem.objects.create(
                application=app,
                system=s,
                generation_kwh=sum((q.generation_kwh for q in months), Decimal(0)),
                er_kg=share.er_kg,
                carry_in_kg=share.carry_in_kg,
                units=share.units,
                carry_out_kg=share.carry_out_kg,
                credit_account=account,
                computation=computation,
            )
        _claim_months(app, systems, quants)
        Transition.objects.create(
            application=app, from_state="", to_state=State.DRAFT, actor=actor, comment=""
        )
        journal.append(
            "app_created",
            {
                "application": app.code,
                "kind": app.kind,
                "period": [fmt_month(first), fmt_month(last)],
                "systems": [s.code for s in systems],
                "er_kg": str(claim.er_kg),
                "carry_in_kg": str(claim.carry_in_kg),
                "units": claim.units,
                "carry_out_kg": str(claim.carry_out_kg),
                "methodology": head.methodology.code,
                "factor": head.factor.code,
            },
            actor=actor,
        )
        args = {"code": app.code, "units": app.units, "period": fmt_period(first, last)}
        notify(actor, "created", app, args)
        if kind == Kind.BUNDLE:
            for s in systems:
                if s.owner_user_id and s.owner_user_id != actor.pk:
                    notify(
                        s.owner_user,
                        "member",
                        app,
                        {**args, "system": s.code, "units": claim.member(s.code).units},
                    )
    return app


def _authorise(
    actor: Any, kind: str, systems: Sequence[PVSystem], aggregator_org: Any
) -> tuple[int | None, dict[int, ManagementConsent]]:
    """The applicant organisation (if any) and, for bundles, each household's consent; ApplicationRefused naming
    every system the person may not claim this way."""
    refusals: list[Refusal] = []
    consents: dict[int, ManagementConsent] = {}
    if kind == Kind.SINGLE:
        for s in systems:
            if not pv_services.is_system_owner(actor, s):
                refusals.append(Refusal(s.code, None, None, "not_owner", str(REFUSAL_MESSAGES["not_owner"])))
        owners = {(s.owner_org_id, None if s.owner_org_id else s.owner_user_id) for s in systems}
        if not refusals and len(owners) > 1:
            head = systems[0]
            for s in systems[1:]:
                if (s.owner_org_id, None if s.owner_org_id else s.owner_user_id) != (
                    head.owner_org_id,
                    None if head.owner_org_id else head.owner_user_id,
                ):
                    refusals.append(
                        Refusal(s.code, None, None, "mixed_owners", str(REFUSAL_MESSAGES["mixed_owners"]))
                    )
        if refusals:
            raise ApplicationRefused(refusals)
        return systems[0].owner_org_id, consents
    org_id = _aggregator_org(actor, systems, aggregator_org)
    from lowcarbon.accounts.models import Organisation

    org = Organisation.objects.get(pk=org_id)
    for s in systems:
        if s.owner_type != OwnerType.HOUSEHOLD or s.owner_org_id:
            refusals.append(
                Refusal(s.code, None, None, "not_household", str(REFUSAL_MESSAGES["not_household"]))
            )
            continue
        consent = _live_consent(s, [org_id])
        if consent is None:
            refusals.append(
                Refusal(
                    s.code,
                    None,
                    None,
                    "no_consent",
                    _fmt(REFUSAL_MESSAGES["no_consent"], {"org": org.display_name}),
                )
            )
        else:
            consents[s.pk] = consent
    if refusals:
        raise ApplicationRefused(refusals)
    return org_id, consents


def _credit_account(system: PVSystem, consent: ManagementConsent | None) -> RegistryAccount:
    """Where a member's units go: the aggregator when the household's consent says so, else the owner."""
    if consent is not None and consent.credit_to_aggregator:
        return ledger.account_for_org(consent.aggregator)
    if system.owner_org_id:
        return ledger.account_for_org(system.owner_org)
    return ledger.account_for_user(system.owner_user)


def _insert_application(
    actor: Any,
    kind: str,
    org_id: int | None,
    systems: Sequence[PVSystem],
    first: date,
    last: date,
    head: Quantification,
    claim: dbundle.Claim,
) -> Application:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Application.objects.create(
                    code=_next_code(first.year),
                    kind=kind,
                    applicant=actor,
                    applicant_org_id=org_id,
                    period_start=first,
                    period_end=last,
                    methodology=head.methodology,
                    factor=head.factor,
                    vintage=first.year,
                    claimed_kg=claim.er_kg,
                    carry_in_kg=claim.carry_in_kg,
                    units=claim.units,
                    carry_out_kg=claim.carry_out_kg,
                )
        except IntegrityError:
            continue
    raise _refuse("busy", gettext("Too many applications are being created at once; try again."))


def _claim_months(app: Application, systems: Sequence[PVSystem], quants: Sequence[Quantification]) -> None:
    """Record each (system, month) as claimed by the application. The database refuses a pair that another live
    application holds (a concurrent claim that slipped past the checks): that becomes a refusal naming them."""
    rows = [
        ClaimedMonth(system_id=q.system_id, month=month_start(q.month), application=app, quantification=q)
        for q in quants
    ]
    try:
        with transaction.atomic():
            ClaimedMonth.objects.bulk_create(rows)
    except IntegrityError:
        codes = {s.pk: s.code for s in systems}
        taken = ClaimedMonth.objects.filter(
            live=True,
            system_id__in=list(codes),
            month__in=sorted({r.month for r in rows}),
        ).exclude(application=app)
        refusals = [
            Refusal(
                codes[c.system_id],
                c.month,
                c.month,
                elig.ALREADY_CLAIMED,
                month_reason(elig.ALREADY_CLAIMED, {"application": c.application.code}),
            )
            for c in taken.select_related("application").order_by("system_id", "month")
        ]
        if not refusals:
            refusals = [
                Refusal(
                    codes[s.pk],
                    app.period_start,
                    app.period_end,
                    elig.ALREADY_CLAIMED,
                    gettext("claimed at the same moment by another application; try again"),
                )
                for s in systems
            ]
        raise ApplicationRefused(refusals)


# ---------------------------------------------------------------------------------------------------------------
# commitment and verification report


def _require_editable(app: Application, actor: Any, what: str) -> None:
    if not is_applicant_side(actor, app):
        raise _refuse("not_allowed", gettext("Only the applicant may %(what)s.") % {"what": what})
    if app.state not in wf.EDITABLE_STATES:
        raise _refuse(
            "wrong_state",
            gettext("The application is “%(state)s”: it can be changed only as a draft or when returned.")
            % {"state": app.get_state_display()},
        )


def commitment_text(app: Application, actor: Any) -> str:
    """The no-double-claim commitment (domain.md §2.8) for this application, in the current language."""
    applicant = app.applicant_org.display_name if app.applicant_org_id else actor.display_name
    return _fmt(
        COMMITMENT_TEXT,
        {
            "name": actor.display_name,
            "code": app.code,
            "applicant": applicant,
            "period": fmt_period(app.period_start, app.period_end),
        },
    )


def do_sign_commitment(application: Application, actor: Any) -> Application:
    """The applicant signs the no-double-claim commitment; its text and time are stored with the application."""
    with transaction.atomic():
        app = Application.objects.select_for_update().get(pk=application.pk)
        _require_editable(app, actor, gettext("sign the commitment"))
        app.commitment_text = commitment_text(app, actor)
        app.commitment_signed_at = timezone.now()
        app.save(update_fields=["commitment_text", "commitment_signed_at"])
        journal.append(
            "app_commitment",
            {
                "application": app.code,
                "signed_at": app.commitment_signed_at.isoformat(),
                "text": app.commitment_text,
            },
            actor=actor,
        )
    return app


def do_attach_report(application: Application, actor: Any, uploaded_file: Any) -> Application:
    """The applicant attaches a verification report (PDF, at most 20 MB)."""
    name = getattr(uploaded_file, "name", "") or ""
    if not name.lower().endswith(".pdf"):
        raise _refuse("report_type", gettext("The verification report must be a PDF file."), "report")
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > REPORT_MAX_BYTES:
        raise _refuse(
            "report_size",
            gettext("The file is larger than %(max)s MB.") % {"max": REPORT_MAX_BYTES // 2**20},
            "report",
        )
    head = uploaded_file.read(5)
    uploaded_file.seek(0)
    if head != b"%PDF-":
        raise _refuse("report_type", gettext("The file is not a PDF document."), "report")
    with transaction.atomic():
        app = Application.objects.select_for_update().get(pk=application.pk)
        _require_editable(app, actor, gettext("attach a report"))
        old = app.report.name if app.report else ""
        app.report.save(f"{app.code}-report.pdf", uploaded_file, save=False)
        app.report_generated = False
        app.save(update_fields=["report", "report_generated"])
        journal.append(
            "app_report",
            {"application": app.code, "file": app.report.name, "generated": False, "replaced": old},
            actor=actor,
        )
    return app


def report_context(app: Application) -> dict[str, Any]:
    """Everything the verification report shows: applicant, systems, monthly generation, factor with its source,
    the arithmetic and the bundle apportionment."""
    members = list(
        app.members.select_related(
            "system", "system__community", "system__owner_user", "system__owner_org", "credit_account"
        ).order_by("system__code")
    )
    factor = app.factor
    rows = []
    for m in members:
        comp = m.computation or {}
        rows.append(
            {
                "member": m,
                "system": m.system,
                "owner": pv_services.owner_label(m.system),
                "months": comp.get("months", []),
                "comp": comp,
                "credit_to": credit_label(m),
                "credit_number": m.credit_account.number if m.credit_account else "",
                "lines": share_lines(comp),
            }
        )
    ef = Decimal(0)
    if (
        factor.ef_om is not None
        and factor.ef_bm is not None
        and factor.w_om is not None
        and factor.w_bm is not None
    ):
        ef = factor.w_om * factor.ef_om + factor.w_bm * factor.ef_bm
    claims = list(
        ProgrammeClaim.objects.filter(system__in=[m.system for m in members]).order_by("period_start")
    )
    return {
        "app": app,
        "rows": rows,
        "factor": factor,
        "ef_cm": ef,
        "methodology": app.methodology,
        "generation_kwh": sum((m.generation_kwh for m in members), Decimal(0)),
        "period": fmt_period(app.period_start, app.period_end),
        "applicant_name": app.applicant_org.name if app.applicant_org_id else app.applicant.display_name,
        "preparer": app.applicant.display_name,
        "pooled": sum(1 for r in rows if r["comp"].get("adjustment") == 1),
        "floor_sum": sum(int(r["comp"].get("floor_units", 0)) for r in rows),
        "other_claims": claims,
        "today": timezone.localdate(),
    }


def report_html(app: Application) -> str:
    """The draft verification report as HTML (the document is in Chinese, the language of the filing)."""
    with translation.override("zh-hans"):
        return render_to_string("registry/app_report_pdf.html", report_context(app))


def do_generate_report(application: Application, actor: Any) -> Application:
    """The platform drafts the verification report (核证报告) from the application's data as a PDF in Chinese;
    self-prepared reports are allowed under the 2022 rules (domain.md §2.1)."""
    with transaction.atomic():
        app = (
            Application.objects.select_for_update()
            .select_related("methodology", "factor")
            .get(pk=application.pk)
        )
        _require_editable(app, actor, gettext("generate the report"))
        pdf = _pdf(report_html(app))
        app.report.save(f"{app.code}-report.pdf", ContentFile(pdf), save=False)
        app.report_generated = True
        app.save(update_fields=["report", "report_generated"])
        journal.append(
            "app_report", {"application": app.code, "file": app.report.name, "generated": True}, actor=actor
        )
    return app


# ---------------------------------------------------------------------------------------------------------------
# workflow


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


def available_actions(app: Application, user: Any) -> list[str]:
    """Workflow actions the person may take on the application now (issuance aside: it has its own page)."""
    return wf.available_actions(app.state, parties(user, app), approved_by_actor=app.reviewer_id == user.pk)


def _ready_to_submit(app: Application) -> None:
    missing = []
    if app.commitment_signed_at is None:
        missing.append(gettext("the signed no-double-claim commitment"))
    if not app.report:
        missing.append(gettext("a verification report (attached or generated)"))
    if missing:
        raise _refuse(
            "incomplete",
            gettext("Before submitting, add %(missing)s.") % {"missing": gettext(" and ").join(missing)},
        )


def do_transition(application: Application, action: str, actor: Any, comment: str = "") -> Application:
    """Move the application one workflow step (domain/workflow.py): authorised by role and four eyes, recorded as a
    Transition with comment, time and actor, journalled, and notified to the applicant. Rejection and withdrawal
    release the application's (system, month) claims. `issue` goes through the ledger (do_issue)."""
    comment = (comment or "").strip()
    if action == wf.ISSUE:
        do_issue(application, actor)
        application.refresh_from_db()
        return application
    with transaction.atomic():
        app = Application.objects.select_for_update().get(pk=application.pk)
        try:
            target = wf.decide(
                action,
                app.state,
                parties(actor, app),
                comment=comment,
                approved_by_actor=app.reviewer_id == getattr(actor, "pk", None),
            )
        except wf.WorkflowRefused as exc:
            raise _refuse(
                exc.code,
                _fmt(
                    WORKFLOW_MESSAGES[exc.code],
                    {"action": action_label(action), "state": app.get_state_display()},
                ),
                "comment" if exc.code == wf.COMMENT_REQUIRED else "action",
            )
        if action in (wf.SUBMIT, wf.RESUBMIT):
            _ready_to_submit(app)
        now = timezone.now()
        from_state = app.state
        app.state = target
        app.state_since = now
        fields = ["state", "state_since"]
        if action in (wf.SUBMIT, wf.RESUBMIT):
            app.submitted_at = now
            fields.append("submitted_at")
        if action in (wf.START_REVIEW, wf.APPROVE):
            app.reviewer = actor
            fields.append("reviewer")
        app.save(update_fields=fields)
        released = 0
        if wf.releases_claims(target):
            released = ClaimedMonth.objects.filter(application=app, live=True).update(live=False)
        Transition.objects.create(
            application=app, from_state=from_state, to_state=target, actor=actor, comment=comment
        )
        journal.append(
            f"app_{action}"[:30],
            {
                "application": app.code,
                "action": action,
                "from": from_state,
                "to": target,
                "comment": comment,
                "released_months": released,
            },
            actor=actor,
        )
        _notify_step(app, action, actor, comment)
    application.state = app.state
    return app


def _notify_step(app: Application, action: str, actor: Any, comment: str) -> None:
    args = {
        "code": app.code,
        "comment": comment,
        "units": app.units,
        "actor": actor.display_name,
    }
    notify(app.applicant, action, app, args)
    if action in (wf.APPROVE, wf.REJECT, wf.WITHDRAW, wf.ISSUE) and app.kind == Kind.BUNDLE:
        for m in app.members.select_related("system", "system__owner_user"):
            owner = m.system.owner_user
            if owner is not None and owner.pk != app.applicant_id:
                notify(
                    owner,
                    "member_outcome",
                    app,
                    {"code": app.code, "system": m.system.code, "state": app.get_state_display()},
                )
    if action == wf.SEND_TO_VERIFICATION:
        for user in User.objects.filter(role_grants__role=Role.VERIFIER, is_active=True).distinct():
            notify(user, "to_verify", app, {"code": app.code})
    if action == wf.APPROVE:
        admins = User.objects.filter(
            Q(role_grants__role=Role.REGISTRY_ADMIN) | Q(is_superuser=True), is_active=True
        )
        for user in admins.distinct():
            if user.pk not in (app.applicant_id, app.reviewer_id):
                notify(user, "to_issue", app, {"code": app.code})


def do_issue(application: Application, issuer: Any, client_key: str = "") -> list[Any]:
    """Issue an approved application's units through the ledger (which checks the issuer's role and four eyes),
    record the step on the application's timeline and notify the applicant and the households."""
    if is_applicant_side(issuer, application):
        raise _refuse(
            "four_eyes",
            _fmt(WORKFLOW_MESSAGES[wf.FOUR_EYES], {"action": action_label(wf.ISSUE)}),
        )
    with transaction.atomic():
        blocks = ledger.do_issue_units(application, issuer=issuer, client_key=client_key)
        app = Application.objects.get(pk=application.pk)
        if not Transition.objects.filter(application=app, to_state=State.ISSUED).exists():
            Transition.objects.create(
                application=app, from_state=State.APPROVED, to_state=State.ISSUED, actor=issuer, comment=""
            )
            _notify_step(app, wf.ISSUE, issuer, "")
    return list(blocks)


# ---------------------------------------------------------------------------------------------------------------
# notifications


def notify(user: Any, key: str, app: Application | None, args: dict[str, Any]) -> Notification | None:
    """An in-app notification to a person, written in their preferred language."""
    if user is None:
        return None
    lang = getattr(user, "preferred_language", "") or "zh-hans"
    with translation.override(lang):
        if "state" in args and app is not None:
            args = {**args, "state": app.get_state_display()}
        message = _fmt(NOTIFICATION_MESSAGES[key], args)
    if len(message) > NOTIFICATION_MAX:
        message = message[: NOTIFICATION_MAX - 1] + "…"
    link = reverse("registry:application_detail", args=[app.code]) if app is not None else ""
    return Notification.objects.create(user=user, message=message, link=link)


def notifications_for(user: Any) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).order_by("-created_at", "-pk")


def unread_count(user: Any) -> int:
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def do_mark_notifications_read(user: Any) -> int:
    """Mark all of the person's notifications read; returns how many were unread."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


# ---------------------------------------------------------------------------------------------------------------
# queues


@dataclass
class QueueItem:
    """An application waiting for the person, with the whole days it has waited in its state."""

    application: Application
    days_waiting: int
    actions: list[str] = field(default_factory=list)
    note: str = ""


def _days(since: datetime, now: datetime) -> int:
    return max(0, (now - since).days)


def reviewer_queue(user: Any) -> list[QueueItem]:
    """What waits for the person: reviewers see submitted applications and those in preliminary review, verifiers
    those at verification, oldest first; applications they prepared are left out (four eyes)."""
    if user is None or not user.is_authenticated:
        return []
    states: list[str] = []
    if user.is_reviewer:
        states += [State.SUBMITTED, State.CITY_REVIEW]
    if is_verifier(user):
        states.append(State.VERIFICATION)
    if not states:
        return []
    now = timezone.now()
    out = []
    qs = (
        Application.objects.filter(state__in=states)
        .select_related("applicant", "applicant_org", "reviewer")
        .order_by("state_since", "pk")
    )
    for app in qs:
        if is_applicant_side(user, app):
            continue
        out.append(QueueItem(app, _days(app.state_since, now), available_actions(app, user)))
    return out


def issue_queue(user: Any) -> list[QueueItem]:
    """Approved applications awaiting issuance, for registry administrators, oldest first; each says whether this
    administrator may issue it (not the preparer nor the approving reviewer)."""
    if user is None or not user.is_authenticated or not user.is_registry_admin:
        return []
    now = timezone.now()
    out = []
    for app in (
        Application.objects.filter(state=State.APPROVED)
        .select_related("applicant", "applicant_org", "reviewer")
        .order_by("state_since", "pk")
    ):
        note = ""
        if is_applicant_side(user, app) or app.reviewer_id == user.pk:
            note = gettext(
                "Four eyes: you prepared or approved this application; another administrator issues it."
            )
        out.append(QueueItem(app, _days(app.state_since, now), [] if note else [wf.ISSUE], note))
    return out


# ---------------------------------------------------------------------------------------------------------------
# reading


def timeline(app: Application) -> list[Transition]:
    """The application's steps, oldest first, each with its state labels in the current language."""
    labels = dict(State.choices)
    out = list(app.transitions.select_related("actor").order_by("at", "pk"))
    for t in out:
        t.from_state_label = str(labels.get(t.from_state, t.from_state))  # type: ignore[attr-defined]
        t.to_state_label = str(labels.get(t.to_state, t.to_state))  # type: ignore[attr-defined]
    return out


def issued_blocks(app: Application) -> list[Any]:
    """The serial blocks the application was issued as (before any later split), in number order."""
    if app.state != State.ISSUED:
        return []
    return list(
        app.blocks.filter(parent__isnull=True).select_related("account", "system").order_by("series", "start")
    )


def superseded_months(app: Application) -> list[tuple[str, date]]:
    """(system code, month) whose claimed quantification was recomputed after the application was created."""
    return [
        (code, month)
        for code, month in ClaimedMonth.objects.filter(
            application=app, quantification__superseded_at__isnull=False
        )
        .order_by("system__code", "month")
        .values_list("system__code", "month")
    ]


def credit_label(member: ApplicationSystem) -> str:
    """Where a member's units go, as shown: an organisation by name, a person masked like the owner column."""
    account = member.credit_account
    if account is None:
        return ""
    if account.owner_org_id:
        return account.holder_name
    if account.owner_user_id == member.system.owner_user_id:
        return pv_services.owner_label(member.system)
    return reg_mask(account.holder_name)


def reg_mask(name: str) -> str:
    from lowcarbon.pv.domain.registration import mask_person_name

    return mask_person_name(name)


def member_rows(app: Application, user: Any) -> list[dict[str, Any]]:
    """The members of an application as shown: owner masked, the household's own share marked."""
    out = []
    for m in app.members.select_related(
        "system", "system__owner_user", "system__owner_org", "system__community", "credit_account"
    ).order_by("system__code"):
        comp = m.computation or {}
        out.append(
            {
                "member": m,
                "system": m.system,
                "owner": pv_services.owner_label(m.system),
                "comp": comp,
                "mine": pv_services.is_system_owner(user, m.system),
                "credit_to": credit_label(m),
                "credit_kind": comp.get("credit", ""),
                "months": comp.get("months", []),
                "lines": share_lines(comp),
            }
        )
    return out


def claimable_systems(actor: Any, kind: str) -> list[PVSystem]:
    """Systems the person could put in an application of this kind: own systems (single) or consenting households
    (bundle)."""
    if kind == Kind.BUNDLE:
        orgs = access.aggregator_orgs(actor)
        if not orgs:
            return []
        return list(
            PVSystem.objects.filter(
                consents__aggregator_id__in=orgs,
                consents__revoked_at__isnull=True,
                owner_type=OwnerType.HOUSEHOLD,
                owner_org__isnull=True,
            )
            .distinct()
            .select_related("owner_user", "community")
            .order_by("code")
        )
    return [
        s
        for s in access.managed_systems(actor)
        .select_related("owner_user", "owner_org", "community")
        .order_by("code")
        if pv_services.is_system_owner(actor, s)
    ]


@dataclass(frozen=True)
class PreviewRow:
    """A system offered on the new-application page: its checklist for the period and what it would bring."""

    system: PVSystem
    owner: str
    checklist: Checklist
    months_total: int
    er_kg: Decimal
    carry_in_kg: Decimal

    @property
    def ready(self) -> bool:
        return self.checklist.ready

    @property
    def problems(self) -> list[CheckRow]:
        return [r for r in self.checklist.rows if r.status != elig.PASS]

    @property
    def months_ok(self) -> int:
        return len(self.checklist.claimable)


def preview_rows(actor: Any, systems: Sequence[PVSystem], first: date, last: date) -> list[PreviewRow]:
    """Each system's checklist for [first, last] and its avoided emissions and carry-in (nothing is saved)."""
    if not systems:
        return []
    ids = [s.pk for s in systems]
    er: dict[int, Decimal] = defaultdict(Decimal)
    for sid, kg in current_quantifications(ids, first, last).values_list("system_id", "er_kg"):
        er[sid] += kg
    carry = dict(SystemCarry.objects.filter(system_id__in=ids).values_list("system_id", "kg"))
    total = len(elig.months_between(first, last))
    return [
        PreviewRow(
            s, pv_services.owner_label(s), c, total, er.get(s.pk, Decimal(0)), carry.get(s.pk, Decimal(0))
        )
        for s, c in zip(systems, checklists(actor, systems, first, last), strict=True)
    ]


def estimate(rows: Sequence[PreviewRow], chosen: Iterable[str]) -> dbundle.Claim | None:
    """The claim the chosen systems would make (floored once, apportioned), or None when none is chosen."""
    wanted = set(chosen)
    members = [
        dbundle.MemberInput(r.system.code, r.er_kg, r.carry_in_kg) for r in rows if r.system.code in wanted
    ]
    return dbundle.compute_claim(members) if members else None


def _num(value: Any, places: int) -> str:
    from django.utils.formats import number_format

    if value in (None, ""):
        return "—"
    return number_format(Decimal(str(value)), decimal_pos=places, force_grouping=True)


def share_lines(comp: dict[str, Any]) -> list[str]:
    """How one member's share was computed, sentence by sentence, from its stored computation (current language)."""
    if not comp:
        return []
    args = {
        "er": _num(comp.get("er_kg"), 3),
        "carry_in": _num(comp.get("carry_in_kg"), 3),
        "kg": _num(comp.get("kg"), 3),
        "exact": _num(comp.get("exact_t"), 6),
        "floor": comp.get("floor_units", 0),
        "rem": _num(comp.get("remainder_t"), 6),
        "rank": comp.get("rank"),
        "n": comp.get("members", 1),
        "units": comp.get("units", 0),
        "carry_out": _num(comp.get("carry_out_kg"), 3),
        "bundle_kg": _num(comp.get("bundle_kg"), 3),
        "bundle_units": comp.get("bundle_units", 0),
        "pooled": comp.get("bundle_pooled_units", 0),
        "floor_sum": comp.get("bundle_floor_sum_units", 0),
    }
    lines = [
        gettext("Avoided emissions over the period: %(er)s kg CO2e (the sum of the monthly results).") % args,
        gettext(
            "Carried in from the previous application: %(carry_in)s kg; together %(kg)s kg = %(exact)s t."
        )
        % args,
        gettext("Whole tonnes of its own: %(floor)s; remainder %(rem)s t.") % args,
    ]
    if int(args["n"]) > 1:
        lines.append(
            gettext(
                "The application floors its total of %(bundle_kg)s kg once to %(bundle_units)s t: %(pooled)s t more "
                "than the members' own whole tonnes together (%(floor_sum)s t), given one each to the largest "
                "remainders."
            )
            % args
        )
        adjustment = int(comp.get("adjustment", 0))
        if adjustment > 0:
            lines.append(gettext("This remainder ranks %(rank)s of %(n)s: one pooled unit (+1).") % args)
        elif adjustment < 0:
            lines.append(
                gettext(
                    "Kilograms owed by other members reduce the total: one unit less (−1) for this member."
                )
            )
        elif args["rank"] is not None:
            lines.append(gettext("This remainder ranks %(rank)s of %(n)s: no pooled unit.") % args)
    carry_line = (
        gettext("Units: %(units)s t. Carried forward: %(kg)s − 1,000 × %(units)s = %(carry_out)s kg.") % args
    )
    if Decimal(str(comp.get("carry_out_kg", "0"))) < 0:
        carry_line += " " + gettext(
            "Negative: the pooled unit was completed with other members' fractions; the next claim settles it."
        )
    lines.append(carry_line)
    return lines
