"""Registry pages: my account (holdings, blocks with serial ranges, transfers, retirements), the transfer and
retirement forms, the certificates (PDF), the public registry (search, block, retirement) and the registry
administrators' cancellation.

Thin: parse, authorise, call `lowcarbon.registry.ledger`, render. Public pages show account numbers and the names
of organisations, never a person's name or phone. A retirement certificate is the holder's: anyone else gets 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from lowcarbon.accounts.models import Membership, Organisation
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.registry import applications, certificates, ledger
from lowcarbon.registry.models import (
    Application,
    ApplicationSystem,
    Cancellation,
    IdempotentRequest,
    JournalEntry,
    RegistryAccount,
    Retirement,
    SerialBlock,
    Transfer,
)

PAGE_SIZE = 50
LIVE_STATES = [SerialBlock.State.HELD, SerialBlock.State.RETIRED, SerialBlock.State.CANCELLED]


# --- whose accounts -------------------------------------------------------------------------------------------


def my_accounts(user: Any) -> list[RegistryAccount]:
    """The accounts the person may dispose of: those of the organisations they administer, then their own."""
    org_ids = Membership.objects.filter(user=user, level=Membership.Level.ADMIN).values_list(
        "organisation_id", flat=True
    )
    accounts = [
        ledger.account_for_org(org) for org in Organisation.objects.filter(pk__in=org_ids).order_by("pk")
    ]
    accounts.append(ledger.account_for_user(user))
    return [a for a in accounts if ledger.may_act_for(user, a)]


def pick_account(accounts: list[RegistryAccount], number: str | None) -> RegistryAccount:
    """The account named in the request (404 unless it is one of the person's), else the first holding units."""
    if number:
        for a in accounts:
            if a.number == number:
                return a
        raise Http404
    for a in accounts:
        if ledger.balance(a) > 0:
            return a
    return accounts[0]


def _account_choices(accounts: list[RegistryAccount]) -> list[tuple[str, str]]:
    return [(a.number, _account_option(a)) for a in accounts]


def _account_option(a: RegistryAccount) -> str:
    if a.owner_org_id:
        return f"{a.number} · {a.owner_org.display_name}"
    return f"{a.number} · {_('personal account')}"


def public_label(account: RegistryAccount) -> str:
    """An account as the public sees it: the number, with the organisation's name; never a person's name."""
    return certificates.account_label(account)


def _page_query(request: HttpRequest, drop: str) -> str:
    q = request.GET.copy()
    q.pop(drop, None)
    return q.urlencode()


def is_repeat(user: Any, operation: str, key: str) -> bool:
    """Whether this client key was already used by the person for this operation (a repeated submission)."""
    return (
        bool(key)
        and IdempotentRequest.objects.filter(actor_id=user.pk, operation=operation, key=key).exists()
    )


def _form_error(form: forms.Form, exc: DomainError, aliases: dict[str, str] | None = None) -> None:
    field = (aliases or {}).get(exc.field or "", exc.field)
    form.add_error(field if field in form.fields else None, exc.message)


# --- forms ------------------------------------------------------------------------------------------------------


class _MoveForm(forms.Form):
    """Common fields of a transfer and a retirement: which account, how many units, from which block, client key."""

    account = forms.ChoiceField(label=gettext_lazy("From account"))
    quantity = forms.IntegerField(label=gettext_lazy("Quantity (tCO2e)"), min_value=1)
    block = forms.CharField(
        label=gettext_lazy("From block (optional)"),
        required=False,
        max_length=120,
        help_text=gettext_lazy(
            "A serial number of one of your blocks. Empty: the oldest units are taken first "
            "(earliest vintage, then lowest numbers)."
        ),
    )
    client_key = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, accounts: list[RegistryAccount], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accounts = {a.number: a for a in accounts}
        self.fields["account"].choices = _account_choices(accounts)
        if len(accounts) == 1:
            self.fields["account"].widget = forms.HiddenInput()

    def source(self) -> RegistryAccount:
        return self.accounts[self.cleaned_data["account"]]

    def key(self) -> str:
        return str(self.cleaned_data["client_key"] or "")

    def block_ids(self) -> list[int] | None:
        """The named block, resolved by any serial inside it; None to let the ledger take the oldest units."""
        text = (self.cleaned_data.get("block") or "").strip()
        if not text:
            return None
        block = ledger.find_by_serial(text)
        if block is None:
            raise DomainError(
                "unknown_serial", _("No block has the serial %(s)s.") % {"s": text}, field="block"
            )
        return [block.pk]


class TransferForm(_MoveForm):
    to_account = forms.CharField(
        label=gettext_lazy("To account number"),
        max_length=20,
        help_text=gettext_lazy("The registry account number of the receiver, e.g. XL-O000003."),
    )
    field_order = ["account", "to_account", "quantity", "block", "client_key"]

    def clean_to_account(self) -> str:
        return str(self.cleaned_data["to_account"]).strip().upper()


class RetireForm(_MoveForm):
    beneficiary = forms.CharField(
        label=gettext_lazy("Beneficiary"),
        max_length=200,
        help_text=gettext_lazy(
            "Who the reduction is claimed for. Shown on the certificate and the public record."
        ),
    )
    purpose = forms.ChoiceField(label=gettext_lazy("Purpose"), choices=Retirement.Purpose.choices)
    retired_on = forms.DateField(
        label=gettext_lazy("Retirement date"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "For example the emissions offset or the event. Public: do not write personal data here."
        ),
    )
    field_order = [
        "account",
        "quantity",
        "beneficiary",
        "purpose",
        "retired_on",
        "note",
        "block",
        "client_key",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["account"].label = gettext_lazy("Retiring account")


class CancelForm(forms.Form):
    application = forms.CharField(label=gettext_lazy("Application number"), max_length=20)
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Recorded in the journal and shown in the public registry."),
    )


class SearchForm(forms.Form):
    serial = forms.CharField(
        label=gettext_lazy("Serial number"),
        required=False,
        max_length=120,
        help_text=gettext_lazy("A block serial or the serial of any single unit inside it."),
    )
    project = forms.CharField(label=gettext_lazy("Project"), required=False, max_length=20)
    vintage = forms.IntegerField(
        label=gettext_lazy("Vintage"), required=False, min_value=1000, max_value=9999
    )
    application = forms.CharField(label=gettext_lazy("Application number"), required=False, max_length=20)


# --- my account ------------------------------------------------------------------------------------------------


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    """One of my accounts: holdings by series and vintage, held blocks, transfers in and out, retirements and
    the issuances credited to it."""
    accounts = my_accounts(request.user)
    acct = pick_account(accounts, request.GET.get("account"))
    blocks = (
        SerialBlock.objects.filter(account=acct, state=SerialBlock.State.HELD)
        .select_related("application")
        .order_by("vintage", "series", "start")
    )
    transfers = (
        Transfer.objects.filter(Q(from_account=acct) | Q(to_account=acct))
        .select_related("from_account__owner_org", "to_account__owner_org")
        .prefetch_related("blocks")
        .order_by("-created_at", "-pk")
    )
    retirements = (
        Retirement.objects.filter(account=acct).prefetch_related("blocks").order_by("-created_at", "-pk")
    )
    issued = (
        Application.objects.filter(
            state=Application.State.ISSUED,
            pk__in=ApplicationSystem.objects.filter(credit_account=acct).values("application_id"),
        )
        .select_related("methodology")
        .order_by("-issued_at")
    )
    block_page = Paginator(blocks, PAGE_SIZE).get_page(request.GET.get("bpage"))
    transfer_page = Paginator(transfers, PAGE_SIZE).get_page(request.GET.get("tpage"))
    retirement_page = Paginator(retirements, PAGE_SIZE).get_page(request.GET.get("rpage"))
    issued_page = Paginator(issued, PAGE_SIZE).get_page(request.GET.get("ipage"))
    transfer_rows = [
        {
            "t": t,
            "incoming": t.to_account_id == acct.pk,
            "other": public_label(t.from_account if t.to_account_id == acct.pk else t.to_account),
            "serials": [b.serial for b in sorted(t.blocks.all(), key=lambda b: (b.series, b.start))],
        }
        for t in transfer_page.object_list
    ]
    return render(
        request,
        "registry/ledger_account.html",
        {
            "acct": acct,
            "holder": acct.holder_name,
            "accounts": [(a.number, _account_option(a)) for a in accounts],
            "balance": ledger.balance(acct),
            "available": ledger.available(acct),
            "holdings": ledger.holdings(acct),
            "block_page": block_page,
            "transfer_page": transfer_page,
            "transfer_rows": transfer_rows,
            "retirement_page": retirement_page,
            "issued_page": issued_page,
            "bquery": _page_query(request, "bpage"),
            "tquery": _page_query(request, "tpage"),
            "rquery": _page_query(request, "rpage"),
            "iquery": _page_query(request, "ipage"),
        },
    )


def _available(accounts: list[RegistryAccount]) -> list[tuple[str, int]]:
    return [(_account_option(a), ledger.available(a)) for a in accounts]


def _initial(request: HttpRequest, acct: RegistryAccount, **extra: Any) -> dict[str, Any]:
    return {
        "account": acct.number,
        "client_key": uuid.uuid4(),
        "block": request.GET.get("block", ""),
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
def transfer(request: HttpRequest) -> HttpResponse:
    """Move units to another registry account; a hidden client key makes a repeated submission harmless."""
    accounts = my_accounts(request.user)
    if request.method == "POST":
        form = TransferForm(request.POST, accounts=accounts)
        if form.is_valid():
            source = form.source()
            target = RegistryAccount.objects.filter(number=form.cleaned_data["to_account"]).first()
            if target is None:
                form.add_error(
                    "to_account",
                    _("No registry account has the number %(n)s.") % {"n": form.cleaned_data["to_account"]},
                )
            else:
                repeated = is_repeat(request.user, "transfer", form.key())
                try:
                    done = ledger.do_transfer(
                        from_account=source,
                        to_account=target,
                        quantity=form.cleaned_data["quantity"],
                        actor=request.user,
                        client_key=form.key(),
                        block_ids=form.block_ids(),
                    )
                except DomainError as exc:
                    _form_error(form, exc, {"block_ids": "block", "serial": "block"})
                else:
                    text = _("Transfer %(number)s: %(q)d units from %(src)s to %(dst)s.") % {
                        "number": done.number,
                        "q": done.quantity,
                        "src": source.number,
                        "dst": public_label(target),
                    }
                    if repeated:
                        text = _("This transfer was already recorded. %(text)s") % {"text": text}
                    messages.success(request, text)
                    return redirect(reverse("registry:account") + "?" + urlencode({"account": source.number}))
    else:
        acct = pick_account(accounts, request.GET.get("account"))
        form = TransferForm(initial=_initial(request, acct), accounts=accounts)
    return render(request, "registry/ledger_transfer.html", {"form": form, "available": _available(accounts)})


@login_required
@require_http_methods(["GET", "POST"])
def retire(request: HttpRequest) -> HttpResponse:
    """Retire units for a beneficiary and purpose; final. Leads to the public record with the certificate."""
    accounts = my_accounts(request.user)
    if request.method == "POST":
        form = RetireForm(request.POST, accounts=accounts)
        if form.is_valid():
            cd = form.cleaned_data
            repeated = is_repeat(request.user, "retire", form.key())
            try:
                done = ledger.do_retire(
                    account=form.source(),
                    quantity=cd["quantity"],
                    beneficiary=cd["beneficiary"],
                    purpose=cd["purpose"],
                    retired_on=cd["retired_on"],
                    actor=request.user,
                    client_key=form.key(),
                    block_ids=form.block_ids(),
                    note=cd["note"],
                )
            except DomainError as exc:
                _form_error(form, exc, {"block_ids": "block", "serial": "block"})
            else:
                text = _("Retirement %(number)s: %(q)d units retired for %(who)s.") % {
                    "number": done.number,
                    "q": done.quantity,
                    "who": done.beneficiary,
                }
                if repeated:
                    text = _("This retirement was already recorded. %(text)s") % {"text": text}
                messages.success(request, text)
                return redirect("registry:public_retirement", number=done.number)
    else:
        acct = pick_account(accounts, request.GET.get("account"))
        form = RetireForm(
            initial=_initial(
                request, acct, retired_on=timezone.localdate(), purpose=Retirement.Purpose.VOLUNTARY
            ),
            accounts=accounts,
        )
    return render(request, "registry/ledger_retire.html", {"form": form, "available": _available(accounts)})


# --- certificates -----------------------------------------------------------------------------------------------


def _pdf(data: bytes, filename: str) -> HttpResponse:
    resp = HttpResponse(data, content_type="application/pdf")
    resp["Content-Disposition"] = f'inline; filename="{filename}"'
    return resp


@login_required
@require_GET
def retirement_certificate(request: HttpRequest, number: str) -> HttpResponse:
    """The PDF certificate of a retirement, for the holder of the retiring account only (404 for anyone else)."""
    retirement = get_object_or_404(Retirement.objects.select_related("account"), number=number)
    if not ledger.may_act_for(request.user, retirement.account):
        raise Http404
    return _pdf(certificates.retirement_pdf(retirement, request), f"retirement-{retirement.number}.pdf")


def _may_see_issuance(user: Any, app: Application) -> bool:
    if user.is_registry_admin or applications.is_applicant_side(user, app):
        return True
    credited = RegistryAccount.objects.filter(
        pk__in=ApplicationSystem.objects.filter(application=app).values("credit_account_id")
    )
    return any(ledger.may_act_for(user, a) for a in credited)


@login_required
@require_GET
def issuance_certificate(request: HttpRequest, code: str) -> HttpResponse:
    """The PDF certificate of an application's issuance: applicant, holders credited, registry administrators."""
    app = get_object_or_404(Application, code=code, state=Application.State.ISSUED)
    if not _may_see_issuance(request.user, app):
        raise Http404
    return _pdf(certificates.issuance_pdf(app, request), f"issuance-{app.code}.pdf")


# --- public registry --------------------------------------------------------------------------------------------


def _labels_by_number(numbers: set[str]) -> dict[str, str]:
    return {
        a.number: public_label(a)
        for a in RegistryAccount.objects.filter(number__in=numbers).select_related("owner_org")
    }


def journal_entry(kind: str, ref: str) -> JournalEntry | None:
    """The journal entry of this kind recording a reference (a retirement, transfer or cancellation number)."""
    return JournalEntry.objects.filter(kind=kind, payload__ref=ref).order_by("seq").first()


def _history(block: SerialBlock) -> dict[str, Any]:
    """A block's public story from `ledger.block_history`: lineage, blocks split from it and dated events."""
    h = ledger.block_history(block)
    root: SerialBlock = h["root"]
    related = {b.pk for b in h["lineage"]} | {b.pk for b in h["descendants"]}
    entries = {e.payload.get("ref"): e for e in h["entries"]}
    issue_entry = entries.get(root.application.code)
    credited = ""
    issued_at = root.created_at
    if issue_entry is not None:
        issued_at = issue_entry.at
        for line in issue_entry.payload.get("blocks", []):
            if line.get("block") == root.pk:
                credited = line.get("account", "")
    numbers = {credited} | {b.account.number for b in (*h["lineage"], *h["descendants"])}
    for t in h["transfers"]:
        numbers |= {t.from_account.number, t.to_account.number}
    for r in h["retirements"]:
        numbers.add(r.account.number)
    labels = _labels_by_number(numbers)

    def moved(obj: Any) -> dict[str, Any]:
        """The serials a record moved within this block's family, and whether only a sibling moved (units split
        off from a common parent, not this block, its ancestors or its descendants)."""
        blocks = [b for b in obj.blocks.all() if b.pk in related or b.parent_id in related]
        return {"serials": [b.serial for b in blocks], "sibling": not any(b.pk in related for b in blocks)}

    events: list[dict[str, Any]] = [
        {
            "at": issued_at,
            "kind": _("Issued"),
            "ref": root.application.code,
            "url": reverse("registry:public_search")
            + "?"
            + urlencode({"application": root.application.code}),
            "detail": _("into %(account)s") % {"account": labels.get(credited, credited)},
            "serials": [root.serial],
            "sibling": False,
            "entry": issue_entry,
        }
    ]
    for t in h["transfers"]:
        events.append(
            {
                "at": t.created_at,
                "kind": _("Transferred"),
                "ref": t.number,
                "url": "",
                "detail": f"{labels[t.from_account.number]} → {labels[t.to_account.number]}",
                **moved(t),
                "entry": entries.get(t.number),
            }
        )
    for r in h["retirements"]:
        events.append(
            {
                "at": r.created_at,
                "kind": _("Retired"),
                "ref": r.number,
                "url": reverse("registry:public_retirement", args=[r.number]),
                "detail": _("for %(who)s (%(purpose)s), %(date)s")
                % {
                    "who": r.beneficiary,
                    "purpose": r.get_purpose_display(),
                    "date": r.retired_on.isoformat(),
                },
                **moved(r),
                "entry": entries.get(r.number),
            }
        )
    for c in h["cancellations"]:
        events.append(
            {
                "at": c.created_at,
                "kind": _("Cancelled"),
                "ref": c.number,
                "url": "",
                "detail": c.reason,
                **moved(c),
                "entry": entries.get(c.number),
            }
        )
    events.sort(key=lambda e: e["at"])
    return {
        "root": root,
        "lineage": [(b, labels.get(b.account.number, b.account.number)) for b in h["lineage"]],
        "descendants": [(b, labels.get(b.account.number, b.account.number)) for b in h["descendants"]],
        "events": events,
    }


def _block_qs() -> Any:
    return SerialBlock.objects.filter(state__in=LIVE_STATES).select_related(
        "account__owner_org", "application"
    )


def _block_rows(blocks: list[SerialBlock]) -> list[dict[str, Any]]:
    ids = [b.pk for b in blocks]
    retired = {
        row["blocks"]: row["number"]
        for row in Retirement.objects.filter(blocks__in=ids).values("blocks", "number")
    }
    cancelled = {
        row["blocks"]: row["number"]
        for row in Cancellation.objects.filter(blocks__in=ids).values("blocks", "number")
    }
    return [
        {
            "b": b,
            "holder": public_label(b.account),
            "retirement": retired.get(b.pk, ""),
            "cancellation": cancelled.get(b.pk, ""),
        }
        for b in blocks
    ]


@require_GET
def public_search(request: HttpRequest) -> HttpResponse:
    """The public registry: find blocks by a serial (or any single unit in a block), project, vintage or
    application; each with its state, holder account and lifecycle. No log-in; no personal data."""
    form = SearchForm(request.GET or None)
    found: SerialBlock | None = None
    history: dict[str, Any] | None = None
    page = None
    searched = False
    if form.is_valid():
        cd = form.cleaned_data
        serial = (cd.get("serial") or "").strip()
        if serial:
            searched = True
            try:
                found = ledger.find_by_serial(serial)
            except DomainError as exc:
                form.add_error("serial", exc.message)
            if found is not None:
                history = _history(found)
        else:
            qs = _block_qs()
            if cd.get("project"):
                qs = qs.filter(project_code__iexact=cd["project"].strip())
            if cd.get("vintage"):
                qs = qs.filter(vintage=cd["vintage"])
            if cd.get("application"):
                qs = qs.filter(application__code__iexact=cd["application"].strip())
            searched = any(cd.get(k) for k in ("project", "vintage", "application"))
            page = Paginator(qs.order_by("-vintage", "series", "start"), PAGE_SIZE).get_page(
                request.GET.get("page")
            )
    elif not request.GET:
        page = Paginator(_block_qs().order_by("-changed_at", "-pk"), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
    return render(
        request,
        "registry/ledger_public_search.html",
        {
            "form": form,
            "found": found,
            "found_row": _block_rows([found])[0] if found is not None else None,
            "history": history,
            "page": page,
            "rows": _block_rows(list(page.object_list)) if page is not None else [],
            "searched": searched,
            "totals": ledger.supply_totals(),
            "query": _page_query(request, "page"),
        },
    )


@require_GET
def public_block(request: HttpRequest, pk: int) -> HttpResponse:
    """The permanent page of a block: state, holder account, lineage from issuance and every event, dated."""
    block = get_object_or_404(SerialBlock.objects.select_related("account__owner_org", "application"), pk=pk)
    return render(
        request,
        "registry/ledger_public_block.html",
        {"row": _block_rows([block])[0], "b": block, "history": _history(block)},
    )


@require_GET
def public_retirement(request: HttpRequest, number: str) -> HttpResponse:
    """The public record of a retirement (the certificate's QR code opens it); the holder sees the certificate
    download here too."""
    r = get_object_or_404(Retirement.objects.select_related("account__owner_org"), number=number)
    blocks = list(r.blocks.order_by("series", "start"))
    return render(
        request,
        "registry/ledger_public_retirement.html",
        {
            "r": r,
            "account": public_label(r.account),
            "blocks": blocks,
            "projects": sorted({b.project_code for b in blocks}),
            "vintages": sorted({b.vintage for b in blocks}),
            "methodologies": sorted({b.methodology_code for b in blocks}),
            "entry": journal_entry("retire", r.number),
            "may_download": ledger.may_act_for(request.user, r.account),
        },
    )


# --- administrators ---------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def admin_cancel(request: HttpRequest) -> HttpResponse:
    """Registry administrators cancel the units of an application issued by mistake, giving the reason."""
    if not request.user.is_registry_admin:
        raise PermissionDenied
    app: Application | None = None
    if request.method == "POST":
        form = CancelForm(request.POST)
        if form.is_valid():
            app = Application.objects.filter(code=form.cleaned_data["application"].strip()).first()
            if app is None:
                form.add_error("application", _("No application has this number."))
            else:
                try:
                    done = ledger.do_cancel(
                        application=app, reason=form.cleaned_data["reason"], actor=request.user
                    )
                except DomainError as exc:
                    _form_error(form, exc)
                else:
                    messages.success(
                        request,
                        _("Cancellation %(number)s: %(q)d units of application %(code)s cancelled.")
                        % {"number": done.number, "q": done.quantity, "code": app.code},
                    )
                    return redirect(
                        reverse("registry:public_search") + "?" + urlencode({"application": app.code})
                    )
    else:
        code = (request.GET.get("application") or "").strip()
        form = CancelForm(initial={"application": code})
        if code:
            app = Application.objects.filter(code=code).first()
            if app is None:
                messages.error(request, _("No application has this number."))
    rows = []
    if app is not None:
        live = _block_qs().filter(application=app).order_by("series", "start")
        rows = _block_rows(list(live))
    return render(request, "registry/ledger_admin_cancel.html", {"form": form, "app": app, "rows": rows})
