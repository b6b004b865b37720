"""`lowcarbon check-deploy [--allow-sqlite] [--allow-http] [--json]`: Django's deployment checks and the platform's
own, as a table of pass/fail with the reason; exit code 1 when any check fails."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext as _

from lowcarbon.ops.deploy import Outcome, run_all


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # the checks are what this command reports

    @property
    def help(self) -> str:  # type: ignore[override]
        return _("Check that this installation is ready for production; exit code 1 on any failure.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-sqlite",
            action="store_true",
            help=_("Accept an SQLite database (a single small server)."),
        )
        parser.add_argument(
            "--allow-http",
            action="store_true",
            help=_("Accept serving over plain HTTP (no secure cookies, no HSTS), e.g. on a closed network."),
        )
        parser.add_argument("--json", action="store_true", help=_("Print the results as JSON."))

    def handle(self, *args: Any, **options: Any) -> None:
        outcomes = run_all(allow_sqlite=options["allow_sqlite"], allow_http=options["allow_http"])
        failed = [o for o in outcomes if o.failed]
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"ok": not failed, "checks": [o.__dict__ for o in outcomes]}, ensure_ascii=False, indent=2
                )
            )
        else:
            self._table(outcomes)
            if failed:
                self.stdout.write(
                    self.style.ERROR(
                        _("%(n)d of %(total)d checks failed.") % {"n": len(failed), "total": len(outcomes)}
                    )
                )
            else:
                self.stdout.write(
                    self.style.SUCCESS(_("All %(total)d checks passed.") % {"total": len(outcomes)})
                )
        if failed:
            sys.exit(1)

    def _table(self, outcomes: list[Outcome]) -> None:
        labels = {"pass": _("pass"), "fail": _("FAIL"), "note": _("note")}
        styles = {"pass": self.style.SUCCESS, "fail": self.style.ERROR, "note": self.style.WARNING}
        name_w = max(_width(_("check")), *(_width(o.name) for o in outcomes))
        status_w = max(_width(v) for v in [*labels.values(), _("result")])
        check, result, detail = _("check"), _("result"), _("detail")
        self.stdout.write(f"{_pad(check, name_w)}  {_pad(result, status_w)}  {detail}")
        self.stdout.write(f"{'-' * name_w}  {'-' * status_w}  {'-' * 40}")
        for o in outcomes:
            status = styles[o.status](_pad(labels[o.status], status_w))
            self.stdout.write(f"{_pad(o.name, name_w)}  {status}  {o.detail}")
