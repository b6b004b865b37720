"""Meter replacement (换表): the old meter is removed and a new one measures the same subject from then on.

The replacement keeps the old meter's final register and the new meter's first register, so that the energy across
the exchange is `(final_old − last_read_old) + (first_read_new − initial_new)` and a drop of the register is not
mistaken for negative generation (domain.md §4.5). Who may record a replacement is decided by the caller (for a PV
system: `lowcarbon.pv.access.can_manage_system`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.metering.models import Meter, MeterReplacement, Reading

#: Meter serial numbers: 4 to 64 letters, digits, "-" or "_" (the same rule as at registration).
SERIAL_RE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
#: A replacement time up to this much ahead of the server clock is accepted (clock skew of a field device).
FUTURE_TOLERANCE = timedelta(minutes=5)


def _fmt(value: datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def do_record_replacement(
    old_meter: Meter,
    *,
    new_serial: str,
    replaced_at: datetime,
    old_final_reading: Decimal,
    new_initial_reading: Decimal,
    work_order: str = "",
    actor=None,  # type: ignore[no-untyped-def]
) -> MeterReplacement:
    """Record the exchange of `old_meter` for a new meter `new_serial` at `replaced_at`, in one transaction: the old
    meter gets `removed_at`, the new meter (same purpose, quantity and subject) is installed at `replaced_at` with
    `initial_register = new_initial_reading`, and the MeterReplacement row links both.

    Refused (DomainError, nothing changed) when the old meter was already replaced or removed, the new serial is
    invalid or already used, `replaced_at` lies in the future or before the old meter was installed, the readings are
    negative, the old meter's final reading is below its last register read, or the old meter has readings after
    `replaced_at`."""
    serial = (new_serial or "").strip()
    if not SERIAL_RE.match(serial):
        raise DomainError(
            "invalid_serial",
            _("“%(value)s” is not a valid meter serial (4 to 64 letters, digits, “-” or “_”).")
            % {"value": serial},
            field="new_serial",
        )
    if timezone.is_naive(replaced_at):
        replaced_at = timezone.make_aware(replaced_at)
    if replaced_at > timezone.now() + FUTURE_TOLERANCE:
        raise DomainError(
            "replaced_at_in_future",
            _("The replacement time %(when)s lies in the future.") % {"when": _fmt(replaced_at)},
            field="replaced_at",
        )
    old_final_reading = Decimal(old_final_reading)
    new_initial_reading = Decimal(new_initial_reading)
    if old_final_reading < 0:
        raise DomainError("negative", _("The value must not be negative."), field="old_final_reading")
    if new_initial_reading < 0:
        raise DomainError("negative", _("The value must not be negative."), field="new_initial_reading")
    work_order = (work_order or "").strip()
    if len(work_order) > 100:
        raise DomainError("too_long", _("At most %(max)s characters.") % {"max": 100}, field="work_order")

    with transaction.atomic():
        old = Meter.objects.select_for_update().get(pk=old_meter.pk)
        if old.removed_at is not None or MeterReplacement.objects.filter(old_meter=old).exists():
            raise DomainError(
                "meter_already_replaced",
                _("Meter %(serial)s was already replaced or removed.") % {"serial": old.serial},
                field="old_meter",
            )
        if Meter.objects.filter(serial__iexact=serial).exists():
            raise DomainError(
                "serial_in_use",
                _("The meter serial %(serial)s is already registered on the platform.") % {"serial": serial},
                field="new_serial",
            )
        if old.installed_at is not None and replaced_at < old.installed_at:
            raise DomainError(
                "replaced_before_installation",
                _("Meter %(serial)s was installed on %(when)s; it cannot be replaced before that.")
                % {"serial": old.serial, "when": _fmt(old.installed_at)},
                field="replaced_at",
            )
        if old.initial_register is not None and old_final_reading < old.initial_register:
            raise DomainError(
                "final_below_initial",
                _("The final reading %(final)s is below the meter's initial register %(initial)s.")
                % {"final": old_final_reading, "initial": old.initial_register},
                field="old_final_reading",
            )
        last = (
            Reading.objects.filter(meter_id=old.pk, cumulative__isnull=False, ts__lte=replaced_at)
            .order_by("-ts")
            .values_list("cumulative", flat=True)
            .first()
        )
        if last is not None and old_final_reading < last:
            raise DomainError(
                "final_below_last_reading",
                _("The final reading %(final)s is below the last register read %(last)s.")
                % {"final": old_final_reading, "last": last},
                field="old_final_reading",
            )
        if Reading.objects.filter(meter_id=old.pk, ts__gt=replaced_at).exists():
            raise DomainError(
                "readings_after_replacement",
                _("Meter %(serial)s has readings after %(when)s; choose the real replacement time.")
                % {"serial": old.serial, "when": _fmt(replaced_at)},
                field="replaced_at",
            )
        try:
            with transaction.atomic():
                new = Meter.objects.create(
                    serial=serial,
                    purpose=old.purpose,
                    quantity=old.quantity,
                    sub_item=old.sub_item,
                    subject_kind=old.subject_kind,
                    subject_id=old.subject_id,
                    installed_at=replaced_at,
                    initial_register=new_initial_reading,
                    interval_minutes=old.interval_minutes,
                )
        except IntegrityError:
            raise DomainError(
                "serial_in_use",
                _("The meter serial %(serial)s is already registered on the platform.") % {"serial": serial},
                field="new_serial",
            )
        old.removed_at = replaced_at
        old.save(update_fields=["removed_at"])
        replacement = MeterReplacement.objects.create(
            old_meter=old,
            new_meter=new,
            replaced_at=replaced_at,
            old_final_reading=old_final_reading,
            new_initial_reading=new_initial_reading,
            work_order=work_order,
            recorded_by=actor if actor is not None and actor.is_authenticated else None,
        )
    old_meter.removed_at = replaced_at
    return replacement
