"""`lowcarbon partitions [--ensure-ahead N] [--json]`: the range partitions of the time-series tables on PostgreSQL
(readings by UTC month, daily rollups by year) with their bounds and row counts; `--ensure-ahead N` first creates the
partitions of the current UTC month and the N following ones (and of the years their readings' local days fall in),
for a scheduled job, so that no ingest has to create one on the first reading of a month."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils.translation import gettext as _

from lowcarbon.metering import partitions


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return _(
            "List the partitions of the readings and daily rollups (PostgreSQL) with their row counts; "
            "--ensure-ahead N creates those of the current month and the N following months."
        )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--ensure-ahead",
            type=int,
            default=None,
            metavar="N",
            help=_("Create the partitions of the current month and the N following months first."),
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help=_("Print the results as JSON.")
        )

    def handle(self, *args: Any, ensure_ahead: int | None, as_json: bool, **options: Any) -> None:
        if ensure_ahead is not None and ensure_ahead < 0:
            raise CommandError(_("--ensure-ahead must be zero or a positive number of months."))
        if connection.vendor != "postgresql":
            if as_json:
                self._json([], [])
            else:
                self.stdout.write(
                    _(
                        "This database (%(vendor)s) is not partitioned: partitions are used on PostgreSQL only."
                    )
                    % {"vendor": connection.vendor}
                )
            return
        created: list[str] = []
        if ensure_ahead is not None:
            months = partitions.READINGS.ahead(datetime.now(UTC).date(), ensure_ahead + 1)
            # a reading of the last month can fall on the next year's first local day (UTC+8)
            years = [*months, partitions.READINGS.following(months[-1])]
            with transaction.atomic():
                created += partitions.ensure_partitions(months, partitions.READINGS)
                created += partitions.ensure_partitions(years, partitions.DAILY_ROLLUPS)
        report = partitions.partition_report()
        if as_json:
            self._json(created, report)
            return
        for name in created:
            self.stdout.write(self.style.SUCCESS(_("created %(partition)s") % {"partition": name}))
        if ensure_ahead is not None and not created:
            self.stdout.write(_("No partition was missing."))
        if not report:
            self.stdout.write(_("No partitions (the tables are not partitioned: run the migrations)."))
            return
        header = (_("table"), _("partition"), _("bounds"), _("rows"))
        rows = [(r["table"], r["partition"], r["bounds"], f"{r['rows']:,}") for r in report]
        widths = [max(_width(x) for x in col) for col in zip(header, *rows, strict=True)]
        for i, row in enumerate([header, *rows]):
            cells = [
                " " * (w - _width(x)) + x if k == 3 else x + " " * (w - _width(x))
                for k, (x, w) in enumerate(zip(row, widths, strict=True))
            ]
            line = "  ".join(cells).rstrip()
            self.stdout.write(self.style.MIGRATE_HEADING(line) if i == 0 else line)
        total = sum(r["rows"] for r in report)
        self.stdout.write(
            _("%(n)d partitions, %(rows)s rows in all.") % {"n": len(report), "rows": f"{total:,}"}
        )

    def _json(self, created: list[str], report: list[dict[str, Any]]) -> None:
        self.stdout.write(
            json.dumps(
                {"vendor": connection.vendor, "created": created, "partitions": report},
                ensure_ascii=False,
                indent=2,
            )
        )
