"""`lowcarbon check-plausibility [--system CODE ...] [--json]`: run the PV plausibility checks and print the counts."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lowcarbon.pv.models import PVSystem
from lowcarbon.pv.plausibility import do_check_plausibility


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        # a property, not a lazy string: argparse needs a real str for the description
        return _(
            "Check PV generation against the clear-sky bound and the specific-yield bands and update the "
            "plausibility flags."
        )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--system",
            dest="systems",
            action="append",
            metavar="CODE",
            help=gettext_lazy("PV system code (repeatable); all systems when omitted."),
        )
        parser.add_argument("--json", action="store_true", help=gettext_lazy("Print the counts as JSON."))

    def handle(self, *args: Any, **options: Any) -> None:
        codes: list[str] | None = options.get("systems")
        system_ids: list[int] | None = None
        if codes:
            found = dict(PVSystem.objects.filter(code__in=codes).values_list("code", "pk"))
            unknown = [c for c in codes if c not in found]
            if unknown:
                raise CommandError(_("Unknown PV system code: %(codes)s") % {"codes": ", ".join(unknown)})
            system_ids = [found[c] for c in codes]
        counts = do_check_plausibility(system_ids)
        if options.get("json"):
            self.stdout.write(json.dumps(counts, ensure_ascii=False, indent=2))
            return
        labels = {
            "systems": _("Systems checked"),
            "months_checked": _("Months with data"),
            "findings": _("Findings"),
            "created": _("Flags created"),
            "updated": _("Flags updated"),
            "reopened": _("Cleared flags reopened (value changed)"),
            "unchanged": _("Flags unchanged"),
            "deleted": _("Open flags removed (finding gone)"),
            "open_warn": _("Open warnings"),
            "open_reject": _("Open rejects"),
        }
        for key, label in labels.items():
            self.stdout.write(f"{label}: {counts[key]}")
