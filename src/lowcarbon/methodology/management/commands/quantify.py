"""`lowcarbon quantify [--system CODE ...] [--from YYYY-MM] [--to YYYY-MM] [--json]`: quantify avoided emissions."""

from __future__ import annotations

import json
import sys
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from tqdm import tqdm

from lowcarbon.core.domain.errors import DomainError
from lowcarbon.methodology.domain.quantify import QuantifySummary, parse_month
from lowcarbon.methodology.services import do_quantify, exclusion_message, resolve_system_codes, summary_data
from lowcarbon.pv.models import PVSystem


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return _(
            "Quantify avoided emissions (kg CO2e) per PV system and month from the monthly generation rollups."
        )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--system",
            dest="systems",
            action="extend",
            nargs="+",
            metavar="CODE",
            help=_("PV system code(s); all systems when omitted."),
        )
        parser.add_argument("--from", dest="start", metavar="YYYY-MM", help=_("First month (inclusive)."))
        parser.add_argument("--to", dest="end", metavar="YYYY-MM", help=_("Last month (inclusive)."))
        parser.add_argument(
            "--json", action="store_true", help=_("Print the summary as JSON (no progress bar).")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        start = self._month(options.get("start"), "--from")
        end = self._month(options.get("end"), "--to")
        codes = options.get("systems")
        try:
            system_ids = resolve_system_codes(codes) if codes else None
        except DomainError as exc:
            raise CommandError(exc.message)
        total = len(system_ids) if system_ids is not None else PVSystem.objects.count()

        as_json = bool(options.get("json"))
        stream = options.get("stderr") or sys.stderr
        with tqdm(total=total, unit=_("system"), file=stream, disable=as_json, leave=False) as bar:
            try:
                summary = do_quantify(system_ids, start, end, progress=bar.update)
            except DomainError as exc:
                raise CommandError(exc.message)

        if as_json:
            self.stdout.write(
                json.dumps(summary_data(summary), ensure_ascii=False, indent=2, default=_json_default)
            )
        else:
            self._print(summary)

    @staticmethod
    def _month(value: str | None, option: str) -> date | None:
        if not value:
            return None
        try:
            return parse_month(value)
        except ValueError:
            raise CommandError(
                _("%(option)s: expected a month as YYYY-MM, got %(value)r")
                % {"option": option, "value": value}
            )

    def _print(self, s: QuantifySummary) -> None:
        out = self.stdout
        out.write(_("Systems: %(n)d") % {"n": s.systems})
        out.write(_("Months computed: %(n)d") % {"n": s.months_computed})
        out.write(_("Months unchanged: %(n)d") % {"n": s.months_unchanged})
        out.write(_("Months superseded: %(n)d") % {"n": s.months_superseded})
        out.write(_("Months excluded: %(n)d") % {"n": s.months_excluded_total})
        for reason, n in sorted(s.months_excluded.items()):
            out.write(f"  {reason}: {n} ({exclusion_message(reason)})")
        out.write(
            self.style.SUCCESS(
                _("Total avoided emissions: %(kg)s kg CO2e (%(t)s t CO2e)")
                % {"kg": f"{s.total_er_kg:f}", "t": f"{s.total_er_t:f}"}
            )
        )


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return f"{value:f}"
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
