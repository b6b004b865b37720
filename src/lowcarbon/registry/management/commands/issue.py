"""`lowcarbon issue APPLICATION_CODE... [--all-approved] --issuer USERNAME [--json]`: issue approved applications'
units into the registry (the scheduled and administrator door to the same issuance as the pages and the API:
`ledger.do_issue_batch`, the application's timeline, the applicant's and households' notifications)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from lowcarbon.accounts.models import User
from lowcarbon.registry import ledger
from lowcarbon.registry.models import (
    Application,
    ApplicationSystem,
    Notification,
    RegistryAccount,
    Transition,
)


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return _(
            "Issue the units of approved applications into the registry accounts of their systems. The issuer "
            "must be a registry administrator who neither prepared nor reviewed the application."
        )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("codes", nargs="*", metavar="APPLICATION_CODE", help=_("Application numbers."))
        parser.add_argument(
            "--all-approved", action="store_true", help=_("Issue every application now approved.")
        )
        parser.add_argument(
            "--issuer", required=True, metavar="USERNAME", help=_("The registry administrator issuing.")
        )
        parser.add_argument("--json", action="store_true", help=_("Print the outcome as JSON."))
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            metavar="N",
            help=_(
                "Applications issued per transaction (each is checked on its own; a refused application "
                "changes nothing and does not stop the others)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        issuer = User.objects.filter(username=options["issuer"], is_active=True).first()
        if issuer is None:
            raise CommandError(_("No active user %(name)s.") % {"name": options["issuer"]})
        if not issuer.is_registry_admin:
            raise CommandError(
                _("%(name)s is not a registry administrator; only a registry administrator can issue units.")
                % {"name": options["issuer"]}
            )
        codes: list[str] = list(dict.fromkeys(options["codes"]))
        if options["all_approved"]:
            approved = Application.objects.filter(state=Application.State.APPROVED).order_by("pk")
            known = set(codes)
            codes += [c for c in approved.values_list("code", flat=True) if c not in known]
        if not codes:
            raise CommandError(_("Name at least one application, or use --all-approved."))
        batch = max(1, int(options["batch_size"]))

        outcomes: list[dict[str, Any]] = []
        for i in range(0, len(codes), batch):
            part = codes[i : i + batch]
            ids = dict(Application.objects.filter(code__in=part).values_list("code", "pk"))
            with transaction.atomic():
                results = ledger.do_issue_batch([ids[c] for c in part if c in ids], issuer=issuer)
                _record_steps([r for r in results if r.issued], issuer)
            by_id = {r.application_id: r for r in results}
            numbers = dict(
                RegistryAccount.objects.filter(
                    pk__in={b.account_id for r in results for b in r.blocks}
                ).values_list("pk", "number")
            )
            done = [self._outcome(code, by_id.get(ids.get(code, -1)), numbers) for code in part]
            outcomes.extend(done)  # reported once committed
            if not options["json"]:
                for o in done:
                    self._print(o)

        refused = [o for o in outcomes if not o["issued"]]
        if options["json"]:
            self.stdout.write(json.dumps(outcomes, ensure_ascii=False, indent=2))
        summary = _("%(issued)d applications issued, %(refused)d refused, %(units)d units.") % {
            "issued": len(outcomes) - len(refused),
            "refused": len(refused),
            "units": sum(o.get("quantity", 0) for o in outcomes),
        }
        if refused:
            raise CommandError(summary)
        if not options["json"]:
            self.stdout.write(self.style.SUCCESS(summary))

    @staticmethod
    def _outcome(code: str, result: ledger.IssueOutcome | None, numbers: dict[int, str]) -> dict[str, Any]:
        if result is None:
            return _refused(code, "not_found", _("No application %(code)s.") % {"code": code})
        if result.error is not None:
            return _refused(code, result.error.code, result.error.message)
        return {
            "application": code,
            "issued": True,
            "quantity": result.quantity,
            "blocks": [
                {"serial": b.serial, "quantity": b.quantity, "account": numbers[b.account_id]}
                for b in result.blocks
            ],
        }

    def _print(self, o: dict[str, Any]) -> None:
        if o["issued"]:
            for b in o["blocks"]:
                self.stdout.write(f"{o['application']}: {b['serial']} ({b['quantity']} t) → {b['account']}")
            if not o["blocks"]:
                self.stdout.write(_("%(code)s: issued, no whole unit") % {"code": o["application"]})
        else:
            self.stderr.write(
                _("%(code)s: refused, %(message)s [%(reason)s]")
                % {"code": o["application"], "message": o["error"]["message"], "reason": o["error"]["code"]}
            )


def _refused(code: str, reason: str, message: str) -> dict[str, Any]:
    return {"application": code, "issued": False, "error": {"code": reason, "message": message}}


def _record_steps(issued: list[ledger.IssueOutcome], issuer: User) -> None:
    """What issuance through the pages also does: the step on each application's timeline, and a notification to
    the applicant and, for a bundle, to each household whose system it includes (in their own language)."""
    if not issued:
        return
    from lowcarbon.registry.applications import NOTIFICATION_MAX, NOTIFICATION_MESSAGES

    apps = list(
        Application.objects.filter(pk__in=[r.application_id for r in issued])
        .select_related("applicant")
        .only("pk", "code", "kind", "units", "applicant_id", "applicant__preferred_language")
    )
    detail = reverse("registry:application_detail", args=["APPLICATION"])
    Transition.objects.bulk_create(
        [
            Transition(
                application=a,
                from_state=Application.State.APPROVED,
                to_state=Application.State.ISSUED,
                actor=issuer,
            )
            for a in apps
        ]
    )
    notes: list[Notification] = []

    def note(user: User, key: str, app: Application, args: dict[str, Any]) -> None:
        with translation.override(user.preferred_language or "zh-hans"):
            text = str(NOTIFICATION_MESSAGES[key]) % args
        if len(text) > NOTIFICATION_MAX:
            text = text[: NOTIFICATION_MAX - 1] + "…"
        notes.append(Notification(user=user, message=text, link=detail.replace("APPLICATION", app.code)))

    for app in apps:
        args = {"code": app.code, "comment": "", "units": app.units, "actor": issuer.display_name}
        note(app.applicant, "issue", app, args)
    bundles = {a.pk: a for a in apps if a.kind == Application.Kind.BUNDLE}
    if bundles:
        members = ApplicationSystem.objects.filter(application_id__in=bundles).select_related(
            "system__owner_user"
        )
        for m in members:
            app = bundles[m.application_id]
            owner = m.system.owner_user
            if owner is not None and owner.pk != app.applicant_id:
                with translation.override(owner.preferred_language or "zh-hans"):
                    state = str(Application.State.ISSUED.label)
                note(
                    owner, "member_outcome", app, {"code": app.code, "system": m.system.code, "state": state}
                )
    Notification.objects.bulk_create(notes, batch_size=1000)
