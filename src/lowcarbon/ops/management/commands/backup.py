"""`lowcarbon backup FILE`: the database (consistent while the server runs) and the media files in one archive,
with a manifest of every table's row count and the registry journal's head (lowcarbon.ops.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from lowcarbon.ops.backup import BackupError, create_backup


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return _("Back up the database and the media files into one archive (.tar.gz).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help=_("Archive to write, e.g. lowcarbon-2025-06-01.tar.gz"))

    def handle(self, *args: Any, **options: Any) -> None:
        target = Path(options["file"])
        try:
            manifest = create_backup(target)
        except (BackupError, OSError) as exc:
            raise CommandError(_("Backup failed: %(error)s") % {"error": exc})
        head = manifest["journal_head"]
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Backup written to %(path)s (%(size).1f MB): %(engine)s, %(tables)d tables, %(rows)d rows, "
                    "journal head %(seq)d %(hash)s, %(media)d media files"
                )
                % {
                    "path": target,
                    "size": target.stat().st_size / 1e6,
                    "engine": manifest["engine"],
                    "tables": len(manifest["tables"]),
                    "rows": sum(manifest["tables"].values()),
                    "seq": head["seq"],
                    "hash": head["hash"][:16],
                    "media": len(manifest["media"]),
                }
            )
        )
