"""`lowcarbon import-readings FILE [FILE...]`: the trusted system door of the ingest (utility exports, meter
gateway dumps). Every meter is accepted; rows are still validated, and rejected rows are quarantined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from lowcarbon.metering.models import IngestBatch
from lowcarbon.metering.parsers import iter_file
from lowcarbon.metering.reasons import reason_message
from lowcarbon.metering.services import batch_summary, do_ingest
from lowcarbon.metering.views import readable_rows


def _check_readable(path: Path) -> None:
    """Fail before anything is imported when a file is missing or cannot be opened."""
    if not path.exists():
        raise CommandError(_("File not found: %(path)s") % {"path": path})
    if path.is_dir():
        raise CommandError(_("Not a file but a directory: %(path)s") % {"path": path})
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise CommandError(
            _("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror or exc}
        )


def file_result(batch: IngestBatch) -> dict[str, Any]:
    """The batch summary with each reason's translated message (for --json)."""
    result = batch_summary(batch)
    result["rejected_reasons"] = [
        {"reason": code, "message": reason_message(code), "count": count}
        for code, count in sorted(batch.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return result


class Command(BaseCommand):
    help = (
        "Import meter readings from CSV or Excel (.xlsx) files as a trusted system (every meter is accepted). "
        "Prints, per file, accepted rows, identical duplicates and rejections by reason. Rejected rows are "
        "quarantined and do not make the command fail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="CSV (.csv) or Excel (.xlsx) files")
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="print one JSON object per file (a list for several)",
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=None,
            metavar="N",
            help="rows per transaction (default from settings)",
        )

    def handle(
        self, *args: Any, files: list[str], as_json: bool, chunk_size: int | None, **options: Any
    ) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise CommandError(_("--chunk-size must be a positive number of rows."))
        paths = [Path(f) for f in files]
        for path in paths:
            _check_readable(path)
        results: list[dict[str, Any]] = []
        failed: list[str] = []
        for path in paths:
            try:
                with path.open("rb") as fh:
                    batch = do_ingest(
                        readable_rows(iter_file(fh, path.name)),
                        source=IngestBatch.Source.CLI,
                        filename=str(path),
                        user=None,
                        chunk_size=chunk_size,
                    )
            except OSError as exc:
                raise CommandError(
                    _("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror or exc}
                )
            if batch.status == IngestBatch.Status.FAILED:
                failed.append(str(path))
            results.append(file_result(batch))
            if not as_json:
                self._print_text(path, batch)
        if as_json:
            payload: Any = results[0] if len(results) == 1 else results
            self.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2))
        if failed:
            raise CommandError(
                _("Could not be read as CSV or Excel: %(files)s") % {"files": ", ".join(failed)}
            )

    def _print_text(self, path: Path, batch: IngestBatch) -> None:
        out = self.stdout
        head = _("%(file)s: batch #%(batch)d (%(status)s)") % {
            "file": path,
            "batch": batch.pk,
            "status": batch.get_status_display(),
        }
        out.write(self.style.MIGRATE_HEADING(head))
        if batch.status == IngestBatch.Status.FAILED:
            out.write(
                self.style.ERROR("  " + _("The file could not be read: %(error)s") % {"error": batch.error})
            )
            return
        out.write(
            "  "
            + _(
                "rows %(rows)d · accepted %(accepted)d · identical duplicates %(duplicates)d · rejected %(rejected)d"
            )
            % {
                "rows": batch.rows_total,
                "accepted": batch.rows_accepted,
                "duplicates": batch.rows_duplicate,
                "rejected": batch.rows_rejected,
            }
        )
        if batch.rejected_by_reason:
            out.write("  " + _("rejected by reason:"))
            for code, count in sorted(batch.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
                out.write(self.style.WARNING(f"    {code} ({count}): {reason_message(code)}"))
        if batch.error:
            out.write(
                self.style.WARNING("  " + _("follow-up step reported: %(error)s") % {"error": batch.error})
            )
