"""Translated messages of the ingest reason codes (codes are stable; messages follow the user's language)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

REASON_MESSAGES = {
    "unknown_meter": _(
        "Unknown meter: no meter with this serial number among the meters you may send readings for."
    ),
    "missing_field": _("A required field is missing."),
    "unparseable_field": _("A field could not be read (not a number, date or time)."),
    "unit_mismatch": _("The unit does not fit this meter."),
    "future_timestamp": _("The time lies in the future."),
    "before_meter_installed": _("The reading is from before this meter was installed."),
    "after_meter_removed": _("The reading is from after this meter was replaced."),
    "conflicting_duplicate": _("A different value is already stored for this meter and time."),
    "cumulative_decrease": _("The register reading decreased and no meter replacement is recorded."),
    "cumulative_out_of_order": _("Register reading older than the last one stored for this meter."),
    "negative_energy": _("Negative energy."),
    "export_not_metered": _("Export sent for a meter that does not measure export."),
    "value_too_large": _(
        "Value too large: more than 12 digits before the decimal point (at most 999999999999.9999 in the "
        "meter's unit), more than can be stored."
    ),
    "before_grid_connection": _("Generation before the system's grid-connection date."),
    "above_physical_ceiling": _("Energy above the physical ceiling (capacity × hours × margin)."),
    "export_above_generation": _("Export above generation for the same interval."),
    "ingest_error": _("The row could not be stored because of an internal error."),
}


def reason_message(code: str) -> str:
    return str(REASON_MESSAGES.get(code, code))
