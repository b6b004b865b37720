"""`lowcarbon town-report --month YYYY-MM -o file.pdf`: the monthly town report as a PDF in Chinese."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _

from lowcarbon.dashboard import report
from lowcarbon.dashboard.domain import metrics


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return _("Write the monthly town report (PDF, in Chinese).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--month", required=True, help=_("Month of the report, YYYY-MM."))
        parser.add_argument("-o", "--output", required=True, help=_("PDF file to write."))

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            month = metrics.parse_month(options["month"])
        except ValueError:
            raise CommandError(_("Give the month as YYYY-MM, e.g. 2025-06."))
        if month > metrics.month_start(timezone.localdate()):
            raise CommandError(_("That month has not begun yet."))
        data = report.report_pdf(month)
        try:
            with open(options["output"], "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise CommandError(
                _("Cannot write %(path)s: %(error)s") % {"path": options["output"], "error": exc.strerror}
            )
        self.stdout.write(
            self.style.SUCCESS(
                _("Town report for %(month)s written to %(path)s (%(size)d bytes).")
                % {"month": f"{month:%Y-%m}", "path": options["output"], "size": len(data)}
            )
        )
