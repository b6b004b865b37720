"""`lowcarbon restore FILE [--force]`: bring back an archive written by `lowcarbon backup` into an empty database,
then prove it: every table's row count equals the manifest's, every media file its saved hash, and the registry
journal verifies up to the saved head (`ledger verify`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from lowcarbon.ops.backup import BackupError, restore_backup
from lowcarbon.ops.deploy import unapplied_migrations
from lowcarbon.registry import journal


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return _("Restore a backup archive into an empty database and verify it. Stop the server first.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help=_("Archive written by lowcarbon backup"))
        parser.add_argument(
            "--force",
            action="store_true",
            help=_("Replace a database that has tables and a media directory that has files (all is lost)."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = restore_backup(Path(options["file"]), force=options["force"])
        except (BackupError, OSError) as exc:
            raise CommandError(_("Restore failed: %(error)s") % {"error": exc})
        manifest = report.manifest
        problems = []
        for table, want, have in report.count_mismatches:
            problems.append(
                _("table %(table)s: %(have)s rows, the backup had %(want)s")
                % {
                    "table": table,
                    "have": "-" if have is None else have,
                    "want": "-" if want is None else want,
                }
            )
        problems.extend(report.media_problems)
        saved = manifest.get("journal_head", {})
        seq, digest = journal.head()
        if seq != saved.get("seq") or (seq and digest != saved.get("hash")):
            problems.append(
                _("journal head is %(seq)s %(hash)s, the backup had %(want_seq)s %(want_hash)s")
                % {
                    "seq": seq,
                    "hash": digest[:16],
                    "want_seq": saved.get("seq"),
                    "want_hash": str(saved.get("hash"))[:16],
                }
            )
        if not problems:
            self.stdout.write(
                _("Row counts of all %(n)d tables and %(m)d media files match the backup.")
                % {"n": len(manifest["tables"]), "m": len(manifest.get("media", {}))}
            )
        out = io.StringIO()
        try:
            call_command("ledger", "verify", stdout=out)
        except CommandError as exc:
            problems.append(str(exc))
        else:
            self.stdout.write(out.getvalue().strip())
        if problems:
            raise CommandError(
                _("Restored, but the result does not match the backup:") + "\n  - " + "\n  - ".join(problems)
            )
        pending = unapplied_migrations()
        self.stdout.write(
            self.style.SUCCESS(
                _("Restored %(path)s (made %(at)s): %(rows)d rows, journal head %(seq)d.")
                % {
                    "path": options["file"],
                    "at": manifest.get("created_at"),
                    "rows": sum(manifest["tables"].values()),
                    "seq": seq,
                }
            )
        )
        if pending:
            self.stdout.write(
                self.style.WARNING(
                    _(
                        "%(n)d migrations of this version are not applied to the restored data; run lowcarbon migrate."
                    )
                    % {"n": len(pending)}
                )
            )
