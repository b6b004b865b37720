"""Excel exports (openpyxl) of the tables officials work with. Each export holds only what the requesting person may
see: reviewers and registry administrators every row; owners and aggregators the systems they may see (pv.access),
the applications they may see (registry.applications) and the registry rows of their own accounts. ID-card and
phone numbers are always masked (core.domain.masking)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lowcarbon.core.domain.masking import mask_id_number, mask_phone
from lowcarbon.dashboard.services import trade_model


def is_official(user: Any) -> bool:
    """Reviewers and registry administrators see every row of every table."""
    return bool(user and user.is_authenticated and (user.is_reviewer or user.is_registry_admin))


def own_account_ids(user: Any) -> list[int]:
    """Registry accounts of the person and of the organisations they belong to."""
    from lowcarbon.registry.models import RegistryAccount

    return list(
        RegistryAccount.objects.filter(Q(owner_user=user) | Q(owner_org__memberships__user=user))
        .distinct()
        .values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class Table:
    key: str
    label: Any
    description: Any


TABLES = [
    Table(
        "systems", gettext_lazy("PV systems"), gettext_lazy("Registration data of the systems you may see.")
    ),
    Table(
        "monthly",
        gettext_lazy("Monthly generation and avoided emissions"),
        gettext_lazy(
            "Metered generation (monthly rollups) and the current quantification of each system and month."
        ),
    ),
    Table(
        "applications", gettext_lazy("Applications"), gettext_lazy("Certification applications you may see.")
    ),
    Table(
        "blocks",
        gettext_lazy("Issued serial blocks"),
        gettext_lazy("Blocks of certified units, with their current state and account."),
    ),
    Table("transfers", gettext_lazy("Transfers"), gettext_lazy("Moves of units between registry accounts.")),
    Table(
        "retirements", gettext_lazy("Retirements"), gettext_lazy("Units retired (cancelled for offsetting).")
    ),
    Table("trades", gettext_lazy("Trades"), gettext_lazy("Executed trades of the market.")),
]


def _sees_systems(user: Any) -> bool:
    return bool(user.is_owner or user.is_aggregator or is_official(user))


def _sees_applications(user: Any) -> bool:
    from lowcarbon.registry.applications import is_verifier

    return bool(_sees_systems(user) or is_verifier(user))


def _sees_registry(user: Any) -> bool:
    return is_official(user) or bool(own_account_ids(user))


def available_tables(user: Any) -> list[Table]:
    """The tables this person may export."""
    if user is None or not user.is_authenticated:
        return []
    allowed = {
        "systems": _sees_systems(user),
        "monthly": _sees_systems(user),
        "applications": _sees_applications(user),
        "blocks": _sees_registry(user),
        "transfers": _sees_registry(user),
        "retirements": _sees_registry(user),
        "trades": trade_model() is not None and _sees_registry(user),
    }
    return [t for t in TABLES if allowed[t.key]]


# ---------------------------------------------------------------------------------------------------------------
# rows


def _dt(value: Any) -> Any:
    if value is None:
        return None
    return timezone.localtime(value).replace(tzinfo=None)


def _owner_cells(system: Any) -> list[Any]:
    if system.owner_org_id:
        org = system.owner_org
        return [org.display_name, mask_phone(org.contact_phone), ""]
    u = system.owner_user
    if u is None:
        return ["", "", ""]
    return [
        u.display_name,
        mask_phone(u.phone),
        mask_id_number(u.get_id_number()) if u.id_number_encrypted else "",
    ]


def _systems(user: Any) -> tuple[list[str], Iterable[list[Any]]]:
    from lowcarbon.pv.access import visible_systems

    head = [
        _("System code"),
        _("Name"),
        _("Owner type"),
        _("Owner"),
        _("Phone (masked)"),
        _("ID-card number (masked)"),
        _("Community"),
        _("Address"),
        _("Capacity (kWp)"),
        _("Tilt (°)"),
        _("Azimuth (°)"),
        _("Grid-connection date"),
        _("Metering arrangement"),
        _("Registered at"),
    ]
    qs = visible_systems(user).select_related("community", "owner_user", "owner_org").order_by("code")

    def rows() -> Iterable[list[Any]]:
        for s in qs:
            yield [
                s.code,
                s.name,
                s.get_owner_type_display(),
                *_owner_cells(s),
                s.community.name,
                s.address,
                s.capacity_kwp,
                s.tilt_deg,
                s.azimuth_deg,
                s.grid_connection_date,
                s.get_metering_display(),
                _dt(s.registered_at),
            ]

    return head, rows()


def _monthly(user: Any) -> tuple[list[str], Iterable[list[Any]]]:
    from lowcarbon.methodology.models import Quantification
    from lowcarbon.pv.access import visible_systems
    from lowcarbon.pv.rollups import monthly_generation

    head = [
        _("System code"),
        _("Month"),
        _("Generation metered (kWh)"),
        _("Export metered (kWh)"),
        _("Generation quantified (kWh)"),
        _("EF_CM (kgCO2/kWh)"),
        _("Avoided emissions (kg CO2e)"),
        _("Methodology"),
        _("Grid factor"),
        _("Computed at"),
    ]
    codes = dict(visible_systems(user).values_list("pk", "code"))
    ids = list(codes)
    gen = monthly_generation(ids)
    quants = {
        (q.system_id, q.month): q
        for q in Quantification.objects.filter(system_id__in=ids, superseded_at__isnull=True).select_related(
            "methodology", "factor"
        )
    }
    keys = sorted(set(gen) | set(quants), key=lambda k: (codes[k[0]], k[1]))

    def rows() -> Iterable[list[Any]]:
        for sid, month in keys:
            g = gen.get((sid, month))
            q = quants.get((sid, month))
            yield [
                codes[sid],
                f"{month:%Y-%m}",
                g.energy_kwh if g else None,
                g.export_kwh if g else None,
                q.generation_kwh if q else None,
                q.ef_cm if q else None,
                q.er_kg if q else None,
                q.methodology.code if q else "",
                q.factor.code if q else "",
                _dt(q.computed_at) if q else None,
            ]

    return head, rows()


def _applications(user: Any) -> tuple[list[str], Iterable[list[Any]]]:
    from lowcarbon.registry.applications import visible_applications

    head = [
        _("Application number"),
        _("Kind"),
        _("State"),
        _("Preparer"),
        _("Phone (masked)"),
        _("Applicant organisation"),
        _("First month"),
        _("Last month"),
        _("Vintage"),
        _("Reductions claimed (kg CO2e)"),
        _("Units (tCO2e)"),
        _("Systems"),
        _("Submitted at"),
        _("In this state since"),
        _("Issued at"),
    ]
    qs = (
        visible_applications(user)
        .select_related("applicant", "applicant_org")
        .prefetch_related("members")
        .order_by("code")
    )

    def rows() -> Iterable[list[Any]]:
        for a in qs:
            yield [
                a.code,
                a.get_kind_display(),
                a.get_state_display(),
                a.applicant.display_name,
                mask_phone(a.applicant.phone),
                a.applicant_org.display_name if a.applicant_org else "",
                f"{a.period_start:%Y-%m}",
                f"{a.period_end:%Y-%m}",
                a.vintage,
                a.claimed_kg,
                a.units,
                len(a.members.all()),
                _dt(a.submitted_at),
                _dt(a.state_since),
                _dt(a.issued_at),
            ]

    return head, rows()


def _blocks(user: Any) -> tuple[list[str], Iterable[list[Any]]]:
    from lowcarbon.registry.models import SerialBlock

    head = [
        _("Serial numbers"),
        _("Series"),
        _("First number"),
        _("Last number"),
        _("Quantity (tCO2e)"),
        _("State"),
        _("Account"),
        _("Holder"),
        _("Project"),
        _("Vintage"),
        _("Methodology"),
        _("Grid factor"),
        _("Application number"),
        _("System code"),
        _("Issued at"),
    ]
    qs = SerialBlock.objects.exclude(state=SerialBlock.State.SPLIT)
    if not is_official(user):
        qs = qs.filter(account_id__in=own_account_ids(user))
    qs = qs.select_related("account__owner_user", "account__owner_org", "application", "system").order_by(
        "series", "start"
    )

    def rows() -> Iterable[list[Any]]:
        for b in qs:
            yield [
                b.serial,
                b.series,
                b.start,
                b.end,
                b.quantity,
                b.get_state_display(),
                b.account.number,
                b.account.holder_name,
                b.project_code,
                b.vintage,
                b.methodology_code,
                b.factor_code,
                b.application.code,
                b.system.code if b.system_id else "",
                _dt(b.created_at),
            ]

    return head, rows()


def _transfers(user: Any) -> tuple[list[str], Iterable[list[Any]]]:
    from lowcarbon.registry.models import Transfer

    head = [_("Transfer number"), _("From account"), _("To account"), _("Quantity (tCO2e)"), _("Time")]
    qs = Transfer.objects.select_related("from_account", "to_account").order_by("created_at", "pk")
    if not is_official(user):
        own = own_account_ids(user)
        qs = qs.filter(Q(from_account_id__in=own) | Q(to_account_id__in=own))

    def rows() -> Iterable[list[Any]]:
        for t in qs:
            yield [t.number, t.from_account.number, t.to_account.number, t.quantity, _dt(t.created_at)]

    return head, rows()


def _retirements(user: Any) -> tuple[list[str], Iterable[list[Any]]]:
    from lowcarbon.registry.models import Retirement

    head = [
        _("Retirement number"),
        _("Account"),
        _("Quantity (tCO2e)"),
        _("Beneficiary"),
        _("Purpose"),
        _("Retirement date"),
        _("Note"),
    ]
    qs = Retirement.objects.select_related("account").order_by("retired_on", "pk")
    if not is_official(user):
        qs = qs.filter(account_id__in=own_account_ids(user))

    def rows() -> Iterable[list[Any]]:
        for r in qs:
            yield [
                r.number,
                r.account.number,
                r.quantity,
                r.beneficiary,
                r.get_purpose_display(),
                r.retired_on,
                r.note,
            ]

    return head, rows()


def _account_number(value: Any) -> str:
    return str(getattr(value, "number", value) or "")


def _trades(user: Any) -> tuple[list[str], Iterable[list[Any]]]:
    model = trade_model()
    head = [
        _("Executed at"),
        _("Mode"),
        _("Quantity (tCO2e)"),
        _("Price (CNY/t)"),
        _("Value (CNY)"),
        _("Seller account"),
        _("Buyer account"),
    ]
    if model is None:
        return head, iter(())
    qs = model.objects.select_related("buyer_account", "seller_account").order_by("executed_at", "pk")
    if not is_official(user):
        own = own_account_ids(user)
        qs = qs.filter(Q(buyer_account_id__in=own) | Q(seller_account_id__in=own))

    def rows() -> Iterable[list[Any]]:
        for t in qs:
            mode = t.get_mode_display() if hasattr(t, "get_mode_display") else t.mode
            yield [
                _dt(t.executed_at),
                mode,
                t.quantity,
                t.price,
                (Decimal(t.price) * t.quantity).quantize(Decimal("0.01")),
                _account_number(t.seller_account),
                _account_number(t.buyer_account),
            ]

    return head, rows()


BUILDERS: dict[str, Callable[[Any], tuple[list[str], Iterable[list[Any]]]]] = {
    "systems": _systems,
    "monthly": _monthly,
    "applications": _applications,
    "blocks": _blocks,
    "transfers": _transfers,
    "retirements": _retirements,
    "trades": _trades,
}


class NotAllowed(Exception):
    """The person may not export this table."""


def export_workbook(user: Any, key: str) -> tuple[str, bytes]:
    """(file name, .xlsx bytes) of one table for this person; NotAllowed when the table is not theirs to export."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    table = next((t for t in available_tables(user) if t.key == key), None)
    if table is None:
        raise NotAllowed(key)
    head, rows = BUILDERS[key](user)
    wb = Workbook()
    ws = wb.active
    ws.title = str(table.label)[:31]
    ws.append(head)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="E8F5E9")
    widths = [max(8, len(str(h)) * 2) for h in head]
    n = 0
    for row in rows:
        ws.append(row)
        n += 1
        for i, v in enumerate(row):
            widths[i] = min(48, max(widths[i], len(str(v or "")) + 2))
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "A2"
    about = wb.create_sheet(_("About this export"))
    now = timezone.localtime()
    for line in (
        [_("Table"), str(table.label)],
        [_("Rows"), n],
        [_("Exported at"), now.replace(tzinfo=None)],
        [_("Exported by"), user.display_name],
        [
            _("Scope"),
            _("Every row (reviewer or registry administrator)")
            if is_official(user)
            else _("Only the rows you may see"),
        ],
        [_("Personal data"), _("ID-card and phone numbers are masked.")],
    ):
        about.append(line)
    about.column_dimensions["A"].width = 18
    about.column_dimensions["B"].width = 60
    buf = io.BytesIO()
    wb.save(buf)
    return f"{key}-{now:%Y%m%d-%H%M}.xlsx", buf.getvalue()
