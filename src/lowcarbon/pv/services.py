"""Services of the PV app: registration (one by one and in bulk), evidence, other-programme claims, consents.

Each `do_*` function checks who may act, validates with `lowcarbon.pv.domain.registration`, and writes in one
transaction; errors a user can cause raise `DomainError` (or `RegistrationInvalid` carrying every problem) and
change nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts.models import Membership, Organisation, Role, RoleGrant, User
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.core.params import param_value
from lowcarbon.metering.models import Meter
from lowcarbon.pv import access
from lowcarbon.pv.domain import registration as reg
from lowcarbon.pv.models import (
    Community,
    Evidence,
    ManagementConsent,
    MeteringArrangement,
    OwnerType,
    ProgrammeClaim,
    PVSystem,
)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
CODE_PREFIX = "PV-"
CAPACITY_LIMIT_KEY = "pv.capacity_limit_kwp"
BULK_MAX_ROWS = 5000

#: Evidence files: documents and photos only, at most 10 MB each.
EVIDENCE_EXTENSIONS = {".pdf", ".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff"}
EVIDENCE_MAX_BYTES = 10 * 1024 * 1024

#: Messages of the reason codes (English msgids, translated when shown).
MESSAGES: dict[str, Any] = {
    "required": _("This field is required."),
    "too_long": _("At most %(max)s characters."),
    "invalid_number": _("“%(value)s” is not a number."),
    "invalid_date": _("“%(value)s” is not a date (write it as YYYY-MM-DD)."),
    "invalid_choice": _("“%(value)s” is not one of the allowed values (%(choices)s)."),
    "unknown_community": _("Unknown community “%(value)s”."),
    "outside_area": _("%(value)s lies outside Zhongshan (allowed: %(min)s to %(max)s)."),
    "capacity_not_positive": _("The capacity must be greater than 0 kWp."),
    "capacity_above_limit": _("%(value)s kWp is above the methodology limit of %(limit)s kWp."),
    "out_of_range": _("%(value)s is outside the allowed range %(min)s to %(max)s."),
    "date_in_future": _("The date %(value)s lies in the future."),
    "invalid_serial": _("“%(value)s” is not a valid meter serial (4 to 64 letters, digits, “-” or “_”)."),
    "negative": _("The value must not be negative."),
    "period_order": _("The period ends before it starts."),
    "invalid_claim": _("The other-programme claim is not valid."),
    "claim_overlap": _("This period overlaps an earlier claim in the same programme (%(start)s to %(end)s)."),
    "invalid_phone": _("“%(value)s” is not a valid phone number."),
    "serial_in_use": _("The meter serial %(serial)s is already registered on the platform."),
    "duplicate_serial_in_file": _(
        "The meter serial %(serial)s already appears in row %(first_row)s of this file."
    ),
    "owner_name_mismatch": _("This phone number belongs to a registered person with a different name."),
    "owner_phone_conflict": _("The same phone number appears with a different name in row %(first_row)s."),
    "consent_document_required": _("The reference of the owner's consent document is required."),
    "owner_not_allowed": _("You may not register a system for this owner."),
    "unknown_organisation": _("Unknown organisation."),
    "aggregator_required": _("Choose the aggregator organisation you act for."),
    "evidence_type": _("Files of type %(ext)s are not accepted (PDF or image files only)."),
    "evidence_size": _("The file is larger than %(max)s MB."),
    "evidence_kind": _("Unknown kind of evidence “%(value)s”."),
}


def message_for(code: str, args: Mapping[str, object] | None = None) -> str:
    """The translated message of a reason code, filled with its arguments."""
    template = MESSAGES.get(code)
    if template is None:
        return code
    text = str(template)
    try:
        return text % dict(args or {}) if "%(" in text else text
    except (KeyError, ValueError, TypeError):
        return text


@dataclass(frozen=True)
class Problem:
    """One problem of a registration or of one bulk row, with its message already translated."""

    field: str
    code: str
    message: str
    row: int | None = None


class RegistrationInvalid(DomainError):
    """A registration refused for one or more reasons; `problems` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0] if problems else Problem("", "invalid", gettext("The registration is not valid."))
        summary = "; ".join(p.message for p in problems) or first.message
        super().__init__(first.code, summary, field=first.field or None, row=first.row)
        self.problems = problems


def _problem(field_name: str, code: str, row: int | None = None, **args: object) -> Problem:
    return Problem(field_name, code, message_for(code, args), row)


def _problems_from(errors: Iterable[reg.FieldError], row: int | None = None, rename=None) -> list[Problem]:  # type: ignore[no-untyped-def]
    out = []
    for e in errors:
        name = rename(e.field) if rename else e.field
        out.append(Problem(name, e.code, message_for(e.code, e.args), row))
    return out


# ---------------------------------------------------------------------------------------------------------------
# helpers


def capacity_limit_kwp(on: date | None = None) -> Decimal:
    """The versioned methodology capacity limit in force (parameter `pv.capacity_limit_kwp`, domain.md §2.2)."""
    return param_value(CAPACITY_LIMIT_KEY, on)


def local_midnight(day: date) -> datetime:
    """Midnight at the start of `day` in Asia/Shanghai, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=LOCAL_TZ)


def meter_purpose_for(metering: str) -> str:
    """A bidirectional arrangement is metered by a bidirectional meter, else by a PV generation meter."""
    if metering == MeteringArrangement.BIDIRECTIONAL:
        return Meter.Purpose.PV_BIDIRECTIONAL
    return Meter.Purpose.PV_GENERATION


def serial_in_use(serial: str) -> bool:
    """A meter serial is unique across the whole platform (any kind of meter), compared case-insensitively."""
    return Meter.objects.filter(serial__iexact=serial).exists()


def is_system_owner(user, system: PVSystem) -> bool:  # type: ignore[no-untyped-def]
    """The person owns the system, or belongs to the organisation that owns it."""
    if user is None or not user.is_authenticated:
        return False
    if system.owner_user_id == user.pk:
        return True
    return (
        bool(system.owner_org_id)
        and Membership.objects.filter(user=user, organisation_id=system.owner_org_id).exists()
    )


def owner_orgs_for(user) -> list[Organisation]:  # type: ignore[no-untyped-def]
    """Organisations for which the person may register systems: those where they hold an enterprise or institution
    owner role (registry administrators: every enterprise and institution)."""
    if user.is_registry_admin:
        return list(
            Organisation.objects.filter(
                kind__in=[Organisation.Kind.ENTERPRISE, Organisation.Kind.INSTITUTION]
            ).order_by("name")
        )
    ids = user.role_grants.filter(
        role__in=[Role.OWNER_ENTERPRISE, Role.OWNER_INSTITUTION], organisation__isnull=False
    ).values_list("organisation_id", flat=True)
    return list(Organisation.objects.filter(pk__in=list(ids)).order_by("name"))


def aggregator_orgs_for(user) -> list[Organisation]:  # type: ignore[no-untyped-def]
    return list(Organisation.objects.filter(pk__in=access.aggregator_orgs(user)).order_by("name"))


def _organisation(value: object) -> Organisation | None:
    if isinstance(value, Organisation):
        return value
    if value in (None, ""):
        return None
    try:
        return Organisation.objects.filter(pk=int(str(value))).first()
    except ValueError:
        return None


def _next_code_number() -> int:
    last = (
        PVSystem.objects.filter(code__regex=r"^PV-[0-9]{6}$")
        .order_by("-code")
        .values_list("code", flat=True)
        .first()
    )
    return int(last[len(CODE_PREFIX) :]) + 1 if last else 1


def _new_username() -> str:
    while True:
        name = "hh-" + secrets.token_hex(5)
        if not User.objects.filter(username=name).exists():
            return name


def _household_user(owner: reg.HouseholdOwner, existing: User | None) -> User:
    """The household owner's person record: found by phone, else created without a usable password."""
    user = existing
    if user is None:
        user = User(username=_new_username(), real_name=owner.real_name, phone=owner.phone)
        user.set_unusable_password()
        user.save()
    elif not user.real_name:
        user.real_name = owner.real_name
        user.save(update_fields=["real_name"])
    RoleGrant.objects.get_or_create(user=user, role=Role.OWNER_HOUSEHOLD, organisation=None)
    return user


def _user_by_phone(phone: str) -> User | None:
    return User.objects.filter(phone=phone).order_by("pk").first()


def _check_evidence_file(kind: str, uploaded_file) -> list[Problem]:  # type: ignore[no-untyped-def]
    field_name = f"evidence_{kind}"
    if kind not in Evidence.Kind.values:
        return [_problem(field_name, "evidence_kind", value=kind)]
    ext = PurePath(uploaded_file.name or "").suffix.lower()
    if ext not in EVIDENCE_EXTENSIONS:
        return [_problem(field_name, "evidence_type", ext=ext or "?")]
    if (uploaded_file.size or 0) > EVIDENCE_MAX_BYTES:
        return [_problem(field_name, "evidence_size", max=EVIDENCE_MAX_BYTES // (1024 * 1024))]
    return []


def _store_evidence(system: PVSystem, kind: str, uploaded_file, actor) -> Evidence:  # type: ignore[no-untyped-def]
    """Save the file under a random name (the original name is kept in the record, never in the path)."""
    original = PurePath(uploaded_file.name or "file").name[:255]
    uploaded_file.name = f"{secrets.token_hex(12)}{PurePath(original).suffix.lower()}"
    return Evidence.objects.create(
        system=system, kind=kind, file=uploaded_file, original_name=original, uploaded_by=actor
    )


# ---------------------------------------------------------------------------------------------------------------
# registration of one system


@dataclass
class _OwnerPlan:
    owner_type: str
    owner_user: User | None = None
    owner_org: Organisation | None = None
    household: reg.HouseholdOwner | None = None
    aggregator: Organisation | None = None
    consent_document: str = ""


def _plan_owner(data: Mapping[str, Any], actor, problems: list[Problem]) -> _OwnerPlan | None:  # type: ignore[no-untyped-def]
    """Decide who owns the new system and whether a management consent is recorded.

    owner_kind "self": the actor, a household owner; "organisation": `owner_org`, an organisation the actor holds
    an enterprise/institution owner role for; "household": a household identified by `owner_real_name` and
    `owner_phone`, registered by an aggregator (with the consent document `consent_document`) or an administrator.
    """
    kind = str(data.get("owner_kind") or "self")
    plan: _OwnerPlan | None = None
    if kind == "self":
        if not actor.has_role(Role.OWNER_HOUSEHOLD):
            problems.append(_problem("owner_kind", "owner_not_allowed"))
            return None
        plan = _OwnerPlan(owner_type=OwnerType.HOUSEHOLD, owner_user=actor)
    elif kind == "organisation":
        org = _organisation(data.get("owner_org"))
        if org is None:
            problems.append(
                _problem("owner_org", "unknown_organisation" if data.get("owner_org") else "required")
            )
            return None
        if org.pk not in {o.pk for o in owner_orgs_for(actor)}:
            problems.append(_problem("owner_org", "owner_not_allowed"))
            return None
        owner_type = (
            OwnerType.INSTITUTION if org.kind == Organisation.Kind.INSTITUTION else OwnerType.ENTERPRISE
        )
        plan = _OwnerPlan(owner_type=owner_type, owner_org=org)
    elif kind == "household":
        if not (actor.is_aggregator or actor.is_registry_admin):
            problems.append(_problem("owner_kind", "owner_not_allowed"))
            return None
        owner = reg.validate_household_owner(data)
        if isinstance(owner, list):
            problems.extend(_problems_from(owner))
        else:
            existing = _user_by_phone(owner.phone)
            if existing is not None and existing.real_name and existing.real_name != owner.real_name:
                problems.append(_problem("owner_real_name", "owner_name_mismatch"))
            plan = _OwnerPlan(owner_type=OwnerType.HOUSEHOLD, owner_user=existing, household=owner)
    else:
        problems.append(
            _problem("owner_kind", "invalid_choice", value=kind, choices="self, organisation, household")
        )
        return None

    # an aggregator registering for someone else records the owner's consent
    agg_ids = set(access.aggregator_orgs(actor))
    aggregator = _organisation(data.get("aggregator_org"))
    if aggregator is None and data.get("aggregator_org") not in (None, ""):
        problems.append(_problem("aggregator_org", "unknown_organisation"))
        return None
    if aggregator is None and kind == "household" and not actor.is_registry_admin:
        if len(agg_ids) != 1:
            problems.append(_problem("aggregator_org", "aggregator_required"))
            return None
        aggregator = Organisation.objects.get(pk=next(iter(agg_ids)))
    if aggregator is not None:
        if aggregator.pk not in agg_ids and not (
            actor.is_registry_admin and aggregator.kind == Organisation.Kind.AGGREGATOR
        ):
            problems.append(_problem("aggregator_org", "owner_not_allowed"))
            return None
        document = str(data.get("consent_document") or "").strip()
        if not document:
            problems.append(_problem("consent_document", "consent_document_required"))
        elif len(document) > 200:
            problems.append(_problem("consent_document", "too_long", max=200))
        if plan is not None:
            plan.aggregator = aggregator
            plan.consent_document = document
    return plan


def _create_system(
    r: reg.Registration,
    plan: _OwnerPlan,
    *,
    community: Community,
    code_number: int,
    actor,  # type: ignore[no-untyped-def]
) -> PVSystem:
    """Write the system, its meter, its other-programme claims and the consent (inside the caller's transaction)."""
    owner_user = plan.owner_user
    if plan.household is not None:
        owner_user = _household_user(plan.household, owner_user)
    system = None
    for _attempt in range(20):
        code = f"{CODE_PREFIX}{code_number:06d}"
        try:
            with transaction.atomic():
                system = PVSystem.objects.create(
                    code=code,
                    name=r.name,
                    owner_type=plan.owner_type,
                    owner_user=owner_user,
                    owner_org=plan.owner_org,
                    address=r.address,
                    community=community,
                    latitude=r.latitude,
                    longitude=r.longitude,
                    capacity_kwp=r.capacity_kwp,
                    tilt_deg=r.tilt_deg,
                    azimuth_deg=r.azimuth_deg,
                    grid_connection_date=r.grid_connection_date,
                    metering=r.metering,
                    installer=r.installer,
                    registered_by=actor,
                )
            break
        except IntegrityError:
            if not PVSystem.objects.filter(code=code).exists():
                raise
            code_number += 1  # taken by a concurrent registration: try the next number
    if system is None:
        raise DomainError("code_exhausted", gettext("No free system code; please retry."))
    try:
        with transaction.atomic():
            Meter.objects.create(
                serial=r.meter_serial,
                purpose=meter_purpose_for(r.metering),
                subject_kind="pv_system",
                subject_id=system.pk,
                installed_at=local_midnight(r.grid_connection_date),
                initial_register=r.initial_register,
            )
    except IntegrityError:
        raise RegistrationInvalid([_problem("meter_serial", "serial_in_use", serial=r.meter_serial)])
    for claim in r.programme_claims:
        ProgrammeClaim.objects.create(
            system=system,
            programme=claim.programme,
            period_start=claim.period_start,
            period_end=claim.period_end,
            reference=claim.reference,
        )
    if plan.aggregator is not None:
        ManagementConsent.objects.create(
            system=system,
            aggregator=plan.aggregator,
            granted_by=owner_user or actor,
            granted_at=timezone.now(),
            document=plan.consent_document,
        )
    return system


def do_register_system(
    data: Mapping[str, Any],
    *,
    actor,  # type: ignore[no-untyped-def]
    evidence: Iterable[tuple[str, Any]] = (),
) -> PVSystem:
    """Register one PV system with its meter (and optional evidence files and other-programme claims).

    `data` holds the registration fields of `validate_registration` (community as its code) plus the owner
    (`owner_kind` self / organisation / household, `owner_org`, `owner_real_name`, `owner_phone`) and, for an
    aggregator, `aggregator_org` and `consent_document`. Raises `RegistrationInvalid` with every problem found.
    """
    if (
        actor is None
        or not actor.is_authenticated
        or not (actor.is_owner or actor.is_aggregator or actor.is_registry_admin)
    ):
        raise DomainError("not_allowed", gettext("You may not register PV systems."))
    communities = {c.code: c for c in Community.objects.all()}
    result = reg.validate_registration(
        data,
        capacity_limit_kwp=capacity_limit_kwp(),
        today=timezone.localdate(),
        communities=communities.keys(),
    )
    problems: list[Problem] = []
    if isinstance(result, list):
        problems.extend(_problems_from(result))
    serial, serial_errors = reg.validate_meter_serial(data.get("meter_serial"))
    if not serial_errors and serial_in_use(serial):
        problems.append(_problem("meter_serial", "serial_in_use", serial=serial))
    plan = _plan_owner(data, actor, problems)
    files = list(evidence)
    for kind, f in files:
        problems.extend(_check_evidence_file(kind, f))
    if problems or isinstance(result, list) or plan is None:
        raise RegistrationInvalid(problems)
    with transaction.atomic():
        system = _create_system(
            result,
            plan,
            community=communities[result.community],
            code_number=_next_code_number(),
            actor=actor,
        )
        for kind, f in files:
            _store_evidence(system, kind, f, actor)
    return system


# ---------------------------------------------------------------------------------------------------------------
# bulk registration


@dataclass
class BulkResult:
    """Outcome of a bulk file: either every row created, or nothing saved and every problem listed."""

    rows_read: int = 0
    created: list[PVSystem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


_CLAIM_COLUMNS = {
    "programme": "programme",
    "programme_start": "period_start",
    "programme_end": "period_end",
    "programme_reference": "reference",
}
_CLAIM_FIELDS_BACK = {f"programme_claims.0.{v}": k for k, v in _CLAIM_COLUMNS.items()}


def _bulk_record(row: Mapping[str, Any]) -> dict[str, Any]:
    from lowcarbon.pv.bulk import normalise_metering

    record = dict(row)
    record["metering"] = normalise_metering(record.get("metering"))
    claim = {target: row.get(col) for col, target in _CLAIM_COLUMNS.items()}
    if any(not reg.is_blank(v) for v in claim.values()):
        record["programme_claims"] = [claim]
    else:
        record["programme_claims"] = []
    return record


def do_bulk_register(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    actor,  # type: ignore[no-untyped-def]
    aggregator_org: Organisation | None,
) -> BulkResult:
    """Register many household systems from a file: every row is validated first, and if any row has a problem
    nothing is saved and every problem is returned with its row and column. Owners are households identified by
    real name and phone (created, without a usable password, when the phone is not known); when an aggregator
    registers, a management consent with the document reference of the row is recorded for each system."""
    if actor is None or not actor.is_authenticated:
        raise DomainError("not_allowed", gettext("You may not register PV systems in bulk."))
    if aggregator_org is not None:
        if aggregator_org.pk not in access.aggregator_orgs(actor) and not (
            actor.is_registry_admin and aggregator_org.kind == Organisation.Kind.AGGREGATOR
        ):
            raise DomainError(
                "not_allowed", gettext("You do not act for this aggregator."), field="aggregator_org"
            )
    elif not actor.is_registry_admin:
        raise DomainError("aggregator_required", message_for("aggregator_required"), field="aggregator_org")

    from lowcarbon.pv.bulk import community_lookup

    communities = {c.code: c for c in Community.objects.all()}
    lookup = community_lookup(communities.values())
    limit = capacity_limit_kwp()
    today = timezone.localdate()

    result = BulkResult()
    valid: list[tuple[int, reg.Registration, reg.HouseholdOwner, str]] = []
    serials: list[tuple[int, str]] = []
    owners_by_phone: dict[str, tuple[int, str]] = {}

    def rename(name: str) -> str:
        return _CLAIM_FIELDS_BACK.get(name, name)

    for row_number, row in rows:
        result.rows_read += 1
        if result.rows_read > BULK_MAX_ROWS:
            raise DomainError(
                "too_many_rows",
                gettext("A file may hold at most %(n)s systems; split it into several files.")
                % {"n": BULK_MAX_ROWS},
            )
        record = _bulk_record(row)
        raw_community = reg.as_text(record.get("community"))
        record["community"] = lookup.get(raw_community.lower(), raw_community)
        row_problems: list[Problem] = []
        r = reg.validate_registration(
            record, capacity_limit_kwp=limit, today=today, communities=communities.keys()
        )
        if isinstance(r, list):
            row_problems.extend(_problems_from(r, row_number, rename))
        serial, serial_errors = reg.validate_meter_serial(record.get("meter_serial"))
        if not serial_errors:
            serials.append((row_number, serial))
        owner = reg.validate_household_owner(record)
        if isinstance(owner, list):
            row_problems.extend(_problems_from(owner, row_number))
        else:
            seen = owners_by_phone.get(owner.phone)
            if seen is None:
                owners_by_phone[owner.phone] = (row_number, owner.real_name)
            elif seen[1] != owner.real_name:
                row_problems.append(
                    _problem("owner_real_name", "owner_phone_conflict", row_number, first_row=seen[0])
                )
        document = reg.as_text(record.get("consent_document"))
        if aggregator_org is not None and not document:
            row_problems.append(_problem("consent_document", "consent_document_required", row_number))
        elif len(document) > 200:
            row_problems.append(_problem("consent_document", "too_long", row_number, max=200))
        result.problems.extend(row_problems)
        if not row_problems and isinstance(r, reg.Registration) and isinstance(owner, reg.HouseholdOwner):
            valid.append((row_number, r, owner, document))

    if result.rows_read == 0:
        raise DomainError("empty_file", gettext("The file holds no systems."))

    # meter serials: unique inside the file and on the platform
    for row_number, first_row in reg.find_duplicate_serials(serials).items():
        serial = next(s for n, s in serials if n == row_number)
        result.problems.append(
            _problem(
                "meter_serial", "duplicate_serial_in_file", row_number, serial=serial, first_row=first_row
            )
        )
    uppers = sorted({s.upper() for _n, s in serials})
    taken: set[str] = set()
    for i in range(0, len(uppers), 500):
        chunk = uppers[i : i + 500]
        taken.update(
            Meter.objects.annotate(u=Upper("serial")).filter(u__in=chunk).values_list("u", flat=True)
        )
    for row_number, serial in serials:
        if serial.upper() in taken:
            result.problems.append(_problem("meter_serial", "serial_in_use", row_number, serial=serial))

    # household owners already known by phone must carry the same name
    known = {u.phone: u for u in User.objects.filter(phone__in=list(owners_by_phone)).order_by("-pk")}
    for phone, (row_number, name) in owners_by_phone.items():
        user = known.get(phone)
        if user is not None and user.real_name and user.real_name != name:
            result.problems.append(_problem("owner_real_name", "owner_name_mismatch", row_number))

    if result.problems:
        result.problems.sort(key=lambda p: p.row or 0)
        return result

    with transaction.atomic():
        number = _next_code_number()
        owners: dict[str, User] = {}
        for _row_number, r, owner, document in valid:
            user = owners.get(owner.phone)
            if user is None:
                user = _household_user(owner, known.get(owner.phone))
                owners[owner.phone] = user
            plan = _OwnerPlan(
                owner_type=OwnerType.HOUSEHOLD,
                owner_user=user,
                aggregator=aggregator_org,
                consent_document=document,
            )
            system = _create_system(
                r, plan, community=communities[r.community], code_number=number, actor=actor
            )
            number = int(system.code[len(CODE_PREFIX) :]) + 1
            result.created.append(system)
    return result


# ---------------------------------------------------------------------------------------------------------------
# evidence, other-programme claims, consents


def do_add_evidence(system: PVSystem, kind: str, uploaded_file, actor) -> Evidence:  # type: ignore[no-untyped-def]
    """Attach an evidence file (grid-connection acceptance, meter photo, proof of ownership ...) to a system."""
    if not access.can_manage_system(actor, system):
        raise DomainError("not_allowed", gettext("You may not add evidence to this system."))
    problems = _check_evidence_file(kind, uploaded_file)
    if problems:
        raise RegistrationInvalid(problems)
    with transaction.atomic():
        return _store_evidence(system, kind, uploaded_file, actor)


def do_add_programme_claim(
    system: PVSystem,
    *,
    programme: str,
    period_start: date | str,
    period_end: date | str,
    reference: str = "",
    actor,  # type: ignore[no-untyped-def]
) -> ProgrammeClaim:
    """Record that the system's generation over a period is claimed in another programme (domain.md §2.8), so the
    period is never credited again as PHCER. Overlaps with a claim in the same programme are refused."""
    if not access.can_manage_system(actor, system):
        raise DomainError("not_allowed", gettext("You may not change this system."))
    claim = reg.validate_programme_claim(
        {
            "programme": programme,
            "period_start": period_start,
            "period_end": period_end,
            "reference": reference,
        }
    )
    if isinstance(claim, list):
        raise RegistrationInvalid(_problems_from(claim))
    with transaction.atomic():
        PVSystem.objects.select_for_update().filter(pk=system.pk).first()
        overlap = (
            ProgrammeClaim.objects.filter(
                system=system,
                programme=claim.programme,
                period_start__lte=claim.period_end,
                period_end__gte=claim.period_start,
            )
            .order_by("period_start")
            .first()
        )
        if overlap is not None:
            raise RegistrationInvalid(
                [
                    _problem(
                        "period_start",
                        "claim_overlap",
                        start=overlap.period_start.isoformat(),
                        end=overlap.period_end.isoformat(),
                    )
                ]
            )
        return ProgrammeClaim.objects.create(
            system=system,
            programme=claim.programme,
            period_start=claim.period_start,
            period_end=claim.period_end,
            reference=claim.reference,
        )


def do_grant_consent(
    system: PVSystem,
    *,
    aggregator: Organisation,
    document: str,
    actor,  # type: ignore[no-untyped-def]
    credit_to_aggregator: bool = False,
) -> ManagementConsent:
    """The owner (or a registry administrator on the owner's written consent) lets an aggregator manage a system."""
    if not (is_system_owner(actor, system) or actor.is_registry_admin):
        raise DomainError("not_allowed", gettext("Only the owner may grant consent for this system."))
    if aggregator.kind != Organisation.Kind.AGGREGATOR:
        raise DomainError(
            "not_aggregator", gettext("%(org)s is not an aggregator.") % {"org": aggregator.display_name}
        )
    document = (document or "").strip()
    if not document:
        raise DomainError(
            "consent_document_required", message_for("consent_document_required"), field="document"
        )
    if len(document) > 200:
        raise DomainError("too_long", message_for("too_long", {"max": 200}), field="document")
    with transaction.atomic():
        PVSystem.objects.select_for_update().filter(pk=system.pk).first()
        if ManagementConsent.objects.filter(
            system=system, aggregator=aggregator, revoked_at__isnull=True
        ).exists():
            raise DomainError(
                "consent_exists",
                gettext("%(org)s already manages this system.") % {"org": aggregator.display_name},
                field="aggregator",
            )
        granted_by = actor if is_system_owner(actor, system) else (system.owner_user or actor)
        return ManagementConsent.objects.create(
            system=system,
            aggregator=aggregator,
            granted_by=granted_by,
            granted_at=timezone.now(),
            document=document,
            credit_to_aggregator=credit_to_aggregator,
        )


def do_revoke_consent(consent: ManagementConsent, *, actor) -> ManagementConsent:  # type: ignore[no-untyped-def]
    """End an aggregator's management of a system: by the owner, a registry administrator, or the aggregator."""
    system = consent.system
    allowed = (
        is_system_owner(actor, system)
        or actor.is_registry_admin
        or consent.aggregator_id in access.aggregator_orgs(actor)
    )
    if not allowed:
        raise DomainError("not_allowed", gettext("You may not revoke this consent."))
    with transaction.atomic():
        locked = ManagementConsent.objects.select_for_update().get(pk=consent.pk)
        if locked.revoked_at is not None:
            raise DomainError("already_revoked", gettext("This consent was already revoked."))
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
    consent.revoked_at = locked.revoked_at
    return locked


# ---------------------------------------------------------------------------------------------------------------
# read side: what the pages and the API show (from rollups and quantifications, never raw readings)

#: Plain-language reasons of the plausibility checks (codes of lowcarbon.pv.domain.plausibility).
FLAG_REASONS: dict[str, Any] = {
    "above_clear_sky": _(
        "The metered generation (%(value)s kWh) is above what the panels could produce under a clear sky all "
        "month (%(limit)s kWh)."
    ),
    "monthly_yield_high": _(
        "The month's yield of %(value)s kWh per kWp is unusually high (warning above %(limit)s kWh per kWp)."
    ),
    "monthly_yield_reject": _(
        "The month's yield of %(value)s kWh per kWp is beyond what is possible in Zhongshan (limit %(limit)s kWh "
        "per kWp); the month is not quantified until a reviewer clears it."
    ),
    "annual_yield_low": _(
        "The year's yield of %(value)s kWh per kWp is unusually low (expected at least %(limit)s kWh per kWp)."
    ),
    "annual_yield_high": _(
        "The year's yield of %(value)s kWh per kWp is unusually high (expected at most %(limit)s kWh per kWp)."
    ),
    "annual_yield_reject": _(
        "The year's yield of %(value)s kWh per kWp is beyond what is possible in Zhongshan (limit %(limit)s kWh "
        "per kWp)."
    ),
    "zero_month": _("No generation was metered in this month and no fault was reported."),
}


def _num(value: Decimal | None, places: int = 1) -> str:
    """A number as the current language writes it (grouping included), with `places` decimals."""
    from django.utils.formats import number_format

    if value is None:
        return "—"
    return number_format(value, decimal_pos=places, force_grouping=True)


def flag_reason(flag) -> str:  # type: ignore[no-untyped-def]
    """Why a plausibility flag was raised, in plain words with its value and limit."""
    template = FLAG_REASONS.get(flag.code)
    args = {"value": _num(flag.value), "limit": _num(flag.limit), "code": flag.code}
    if template is None:
        return gettext("Check “%(code)s” failed: value %(value)s, limit %(limit)s.") % args
    return str(template) % args


def owner_label(system: PVSystem) -> str:
    """The owner as shown on pages and in the API: an organisation's name, or a person's masked name."""
    if system.owner_org_id:
        return system.owner_org.display_name
    user = system.owner_user
    if user is None:
        return ""
    return reg.mask_person_name(user.real_name or gettext("(no name)"))


def owner_phone_masked(system: PVSystem) -> str:
    if system.owner_org_id:
        return ""
    return system.owner_user.phone_masked if system.owner_user else ""


def address_for(system: PVSystem, user=None) -> str:  # type: ignore[no-untyped-def]
    """A household's address is personal data: shown in full only to the owner; masked for everyone else."""
    if system.owner_type != OwnerType.HOUSEHOLD or system.owner_org_id:
        return system.address
    if user is not None and user.is_authenticated and system.owner_user_id == user.pk:
        return system.address
    return reg.mask_address(system.address)


def year_totals(system_ids: list[int], year: int) -> dict[int, tuple[Decimal | None, Decimal | None]]:
    """{system id: (metered generation kWh, current avoided emissions kg)} over a calendar year."""
    from lowcarbon.methodology.models import Quantification
    from lowcarbon.pv.rollups import monthly_generation

    gen: dict[int, Decimal] = {}
    for (sid, _month), g in monthly_generation(system_ids, date(year, 1, 1), date(year, 12, 1)).items():
        gen[sid] = gen.get(sid, Decimal(0)) + g.energy_kwh
    er: dict[int, Decimal] = {}
    for sid, kg in Quantification.objects.filter(
        system_id__in=system_ids, month__year=year, superseded_at__isnull=True
    ).values_list("system_id", "er_kg"):
        er[sid] = er.get(sid, Decimal(0)) + kg
    return {sid: (gen.get(sid), er.get(sid)) for sid in system_ids}


@dataclass
class MonthRow:
    """One month of a system: metered generation, specific yield, clear-sky bound, avoided emissions, flags."""

    month: date
    generation_kwh: Decimal | None = None
    export_kwh: Decimal | None = None
    specific_yield: Decimal | None = None
    bound_kwh: Decimal | None = None
    er_kg: Decimal | None = None
    factor_code: str = ""
    ef_cm: Decimal | None = None
    flags: list[Any] = field(default_factory=list)

    @property
    def open_flags(self) -> list[Any]:
        return [f for f in self.flags if f.cleared_at is None]


def monthly_overview(system: PVSystem, year: int) -> list[MonthRow]:
    """The twelve months of `year` for one system: generation from the monthly rollups, the clear-sky physical
    bound (lowcarbon.pv.plausibility), the current quantification with the factor used, and plausibility flags."""
    from lowcarbon.methodology.models import Quantification
    from lowcarbon.pv.models import PlausibilityFlag
    from lowcarbon.pv.plausibility import clear_sky_monthly_bounds
    from lowcarbon.pv.rollups import monthly_generation

    rows = [MonthRow(month=date(year, m, 1)) for m in range(1, 13)]
    for (_sid, month), g in monthly_generation([system.pk], date(year, 1, 1), date(year, 12, 1)).items():
        row = rows[month.month - 1]
        row.generation_kwh = g.energy_kwh
        row.export_kwh = g.export_kwh
        if system.capacity_kwp:
            row.specific_yield = (g.energy_kwh / system.capacity_kwp).quantize(Decimal("0.01"))
    bounds = clear_sky_monthly_bounds([system], year).get(system.pk, [])
    for i, b in enumerate(bounds[:12]):
        rows[i].bound_kwh = b
    for q in Quantification.objects.filter(
        system_id=system.pk, month__year=year, superseded_at__isnull=True
    ).select_related("factor"):
        row = rows[q.month.month - 1]
        row.er_kg = q.er_kg
        row.factor_code = q.factor.code
        row.ef_cm = q.ef_cm
    for f in PlausibilityFlag.objects.filter(system=system, month__year=year).order_by("month", "code"):
        rows[f.month.month - 1].flags.append(f)
    return rows
