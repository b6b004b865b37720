"""`lowcarbon ledger verify` checks the registry journal's hash chain; `lowcarbon ledger export FILE` writes it as
JSON Lines that can be re-checked without the platform."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lowcarbon.registry import journal
from lowcarbon.registry.domain.journal import (
    ANCHOR_MISMATCH,
    CONTENT_MISMATCH,
    FIELDS_COMPARED,
    FIELDS_COMPARED_UNREAD,
    HASH_MISMATCH,
    PREV_LINK_BROKEN,
    SEQ_GAP,
    TRUNCATED,
)
from lowcarbon.registry.models import JournalEntry, VerificationRun


def reason_text(reason: str) -> str:
    """What a broken-chain reason code means, in the user's language."""
    return {
        HASH_MISMATCH: _("its content does not give its stored hash (the entry was altered)"),
        PREV_LINK_BROKEN: _("it does not link to the hash of the entry before it"),
        SEQ_GAP: _("its sequence number does not follow the entry before it (an entry is missing)"),
        CONTENT_MISMATCH: _("its stored fields differ from the text that was hashed (the entry was altered)"),
        TRUNCATED: _(
            "the journal ends before the last entry a recorded verification reached (entries were deleted from "
            "its end)"
        ),
        ANCHOR_MISMATCH: _(
            "it no longer has the hash a recorded verification found for it (entries up to it were deleted or "
            "replaced)"
        ),
    }.get(reason, reason)


def _record_run(started_at: Any, method: str, chain_only: bool, result: Any, error: str) -> bool:
    """Keep the outcome of this verification (VerificationRun) for the administrators' dashboard; False when the
    database refuses the write (a read-only standby or role: the verification itself only reads)."""
    try:
        with transaction.atomic():
            _save_run(started_at, method, chain_only, result, error)
    except DatabaseError:
        return False
    return True


def _save_run(started_at: Any, method: str, chain_only: bool, result: Any, error: str) -> None:
    VerificationRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        method=method,
        chain_only=chain_only,
        ok=bool(result is not None and result.ok),
        entries=result.count if result is not None else 0,
        head_hash=(result.head_hash or "") if result is not None and result.ok else "",
        first_bad_seq=result.first_bad_seq if result is not None else None,
        reason=(result.reason or "") if result is not None else "",
        error=error,
    )


def _anchor_failure(result: Any) -> str:
    """The message for a chain that verifies but no longer reaches the recorded head of an earlier verification."""
    anchor = journal.last_verified_run()
    args = {
        "at": timezone.localtime(anchor.finished_at).isoformat(timespec="seconds") if anchor else "?",
        "seq": anchor.entries if anchor else "?",
        "hash": anchor.head_hash if anchor else "?",
        "code": result.reason,
    }
    if result.reason == TRUNCATED:
        return _(
            "Journal TRUNCATED: entries %(first)s–%(last)s are missing. The verification of %(at)s reached entry "
            "%(seq)s (hash %(hash)s); the journal now ends at entry %(head)s. [%(code)s]"
        ) % {**args, "first": result.first_bad_seq, "last": result.missing_through, "head": result.count}
    return (
        _(
            "Journal REWRITTEN: entry %(seq)s no longer has the hash %(hash)s that the verification of %(at)s "
            "recorded for it; entries up to it were deleted or replaced since. [%(code)s]"
        )
        % args
    )


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return _("Verify the registry journal's hash chain, or export the journal as JSON Lines.")

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help=_("Recompute every entry's hash and check the chain."))
        verify.add_argument(
            "--chain-only",
            action="store_true",
            help=_(
                "Check sequence, links and hashes only, not that each entry's fields match its hashed text."
            ),
        )
        verify.add_argument(
            "--method",
            choices=["auto", "sql", "stream"],
            default="auto",
            help=_(
                "stream: read every entry and recompute its hash here; sql: let PostgreSQL recompute them; "
                "auto: sql on PostgreSQL, stream otherwise."
            ),
        )
        export = sub.add_parser("export", help=_("Write the journal as JSON Lines (one entry per line)."))
        export.add_argument("file", help=_("Output file; '-' for standard output."))

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            self._verify(options["method"], options["chain_only"])
        else:
            self._export(options["file"])

    def _verify(self, method: str, chain_only: bool) -> None:
        started = time.perf_counter()
        started_at = timezone.now()
        try:
            result = journal.verify_journal(method=method, chain_only=chain_only)
        except ValueError as exc:
            _record_run(started_at, method, chain_only, None, str(exc))
            raise CommandError(str(exc))
        seconds = time.perf_counter() - started
        if not _record_run(started_at, method, chain_only, result, ""):
            self.stderr.write(
                self.style.WARNING(
                    _(
                        "Warning: this verification could not be recorded (the database refuses writes, e.g. a "
                        "read-only standby); the next recorded verification cannot check the chain against it."
                    )
                )
            )
        if result.fields == FIELDS_COMPARED_UNREAD:
            self.stderr.write(
                self.style.WARNING(
                    _(
                        "Note: the journal table's definition could not be read (the database refuses the check's "
                        "temporary table, e.g. a read-only standby); every entry's fields were compared with its "
                        "hashed text instead."
                    )
                )
            )
        if result.fields == FIELDS_COMPARED:
            self.stderr.write(
                self.style.WARNING(
                    _(
                        "Warning: the journal table no longer generates time, kind, actor and payload from the "
                        "hashed text (its definition was altered); every entry's fields were compared instead."
                    )
                )
            )
        if result.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    _("Journal OK: %(n)d entries checked in %(s).2f s; head hash %(hash)s")
                    % {"n": result.count, "s": seconds, "hash": result.head_hash}
                )
            )
            return
        if result.reason in (TRUNCATED, ANCHOR_MISMATCH):
            raise CommandError(_anchor_failure(result))
        entry = JournalEntry.objects.filter(seq=result.first_bad_seq).values("kind", "at").first()
        kind = entry["kind"] if entry else "?"
        at = timezone.localtime(entry["at"]).isoformat() if entry else "?"
        raise CommandError(
            _(
                "Journal BROKEN at entry %(seq)s (kind %(kind)s, time %(at)s): %(why)s [%(code)s]. %(n)d entries read."
            )
            % {
                "seq": result.first_bad_seq,
                "kind": kind,
                "at": at,
                "why": reason_text(result.reason),
                "code": result.reason,
                "n": result.count,
            }
        )

    def _export(self, path: str) -> None:
        if path == "-":
            n = journal.export_journal(self.stdout)
            self.stderr.write(_("%(n)d entries exported.") % {"n": n})
            return
        try:
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                n = journal.export_journal(fh)
        except OSError as exc:
            raise CommandError(_("Cannot write %(path)s: %(error)s") % {"path": path, "error": exc.strerror})
        self.stdout.write(
            self.style.SUCCESS(_("%(n)d entries exported to %(path)s") % {"n": n, "path": path})
        )
