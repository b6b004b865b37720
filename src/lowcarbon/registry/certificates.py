"""Certificates of issuance and of retirement as PDF: A4, Chinese first with English sub-labels, the Noto Sans CJK SC
font embedded, and a QR code to the public verification page (domain.md §3.2 step 6, §9.1 "retirement detail").

The documents are read-only views of registry records: they change nothing. HTML is rendered from the
`registry/cert_*.html` templates and turned into PDF with WeasyPrint.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from lowcarbon.registry.models import Application, RegistryAccount, Retirement, SerialBlock

PRIMARY_LANGUAGE = "zh-hans"
SECOND_LANGUAGE = "en"

# Labels printed on the certificates, each in Chinese with the English below it.
_LABELS = {
    "platform": gettext_noop("Xiaolan low-carbon integrated service platform"),
    "registry": gettext_noop("Carbon-inclusion (PHCER) registry"),
    "retirement_title": gettext_noop("Certificate of retirement"),
    "issuance_title": gettext_noop("Certificate of issuance"),
    "retirement_number": gettext_noop("Retirement number"),
    "application_number": gettext_noop("Application number"),
    "beneficiary": gettext_noop("Beneficiary"),
    "purpose": gettext_noop("Purpose"),
    "retired_on": gettext_noop("Retirement date"),
    "quantity": gettext_noop("Quantity"),
    "account": gettext_noop("Retiring account"),
    "note": gettext_noop("Note"),
    "projects": gettext_noop("Projects"),
    "vintages": gettext_noop("Vintages"),
    "serial_ranges": gettext_noop("Serial ranges"),
    "serial": gettext_noop("Serial range"),
    "project": gettext_noop("Project"),
    "vintage": gettext_noop("Vintage"),
    "methodology": gettext_noop("Methodology"),
    "grid_factor": gettext_noop("Grid emission factor"),
    "applicant": gettext_noop("Applicant"),
    "kind": gettext_noop("Kind"),
    "period": gettext_noop("Monitoring period"),
    "issued_at": gettext_noop("Issued at"),
    "systems": gettext_noop("Systems"),
    "system": gettext_noop("System"),
    "units": gettext_noop("Units"),
    "credited_account": gettext_noop("Account credited"),
    "accounts_credited": gettext_noop("Accounts credited"),
    "issued_blocks": gettext_noop("Serial blocks issued"),
    "cancellations": gettext_noop("Units of this application cancelled earlier"),
    "cancelled_note": gettext_noop(
        "Units issued earlier for this application were cancelled and re-issued under the numbers above."
    ),
    "cancellation_number": gettext_noop("Cancellation number"),
    "reason": gettext_noop("Reason"),
    "date": gettext_noop("Date"),
    "verify": gettext_noop("Verify this certificate"),
    "verify_hint": gettext_noop("Scan the code or open the address to see the public registry record."),
    "generated_at": gettext_noop("Generated at"),
    "unit_note": gettext_noop("1 unit = 1 tCO2e; each serial number is one unit."),
    "retired_note": gettext_noop(
        "The units listed are retired in the registry and can no longer be transferred or used again."
    ),
    "issued_note": gettext_noop("The units listed were issued into the registry accounts shown."),
    "tco2e": gettext_noop("tCO2e"),
    "total": gettext_noop("Total"),
}


@dataclass(frozen=True)
class Bilingual:
    """A text in the certificate's two languages; `en` is only printed when it differs from `zh`."""

    zh: str
    en: str

    @property
    def differs(self) -> bool:
        return self.zh != self.en

    def __str__(self) -> str:
        return self.zh


def _both(fn: Any) -> Bilingual:
    """Evaluate `fn()` (which calls gettext or a model's display method) in both languages."""
    with translation.override(PRIMARY_LANGUAGE):
        zh = str(fn())
    with translation.override(SECOND_LANGUAGE):
        en = str(fn())
    return Bilingual(zh, en)


def labels() -> dict[str, Bilingual]:
    return {key: _both(lambda m=msgid: gettext(m)) for key, msgid in _LABELS.items()}


# --- addresses and the QR code ---------------------------------------------------------------------------------


def absolute_url(path: str, request: HttpRequest | None = None) -> str:
    """The absolute address of `path`: from the request when there is one, else from LOWCARBON_PUBLIC_BASE_URL
    (a setting or environment variable, e.g. https://lowcarbon.xiaolan.gov.cn) for documents made off-line."""
    if request is not None:
        return request.build_absolute_uri(path)
    base = getattr(settings, "LOWCARBON_PUBLIC_BASE_URL", "") or os.environ.get(
        "LOWCARBON_PUBLIC_BASE_URL", ""
    )
    if not base:
        raise ImproperlyConfigured(
            "LOWCARBON_PUBLIC_BASE_URL is not set: certificates made without a web request need the platform's "
            "public address for their verification QR code."
        )
    return base.rstrip("/") + path


def retirement_verification_url(retirement: Retirement, request: HttpRequest | None = None) -> str:
    return absolute_url(reverse("registry:public_retirement", args=[retirement.number]), request)


def issuance_verification_url(application: Application, request: HttpRequest | None = None) -> str:
    path = reverse("registry:public_search") + "?" + urlencode({"application": application.code})
    return absolute_url(path, request)


def qr_data_uri(text: str) -> str:
    """A QR code (error correction M) of `text` as an SVG data URI, vector so it prints sharp."""
    import qrcode
    import qrcode.image.svg

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    qr.add_data(text)
    qr.make(fit=True)
    img = qr.make_image(image_factory=qrcode.image.svg.SvgPathImage)
    buf = io.BytesIO()
    img.save(buf)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --- what the certificates say ---------------------------------------------------------------------------------


def account_label(account: RegistryAccount) -> str:
    """An account as printed on certificates and public pages: its number, and an organisation's name; a person's
    name is never shown."""
    if account.owner_org_id:
        return f"{account.number} · {account.owner_org.display_name}"
    return account.number


def _block_row(block: SerialBlock) -> dict[str, Any]:
    return {
        "serial": block.serial,
        "first": block.start,
        "last": block.end,
        "quantity": block.quantity,
        "project": block.project_code,
        "vintage": block.vintage,
        "methodology": block.methodology_code,
        "factor": block.factor_code,
        "account": block.account.number,
    }


def _distinct(values: list[Any]) -> list[Any]:
    return sorted(set(values))


def _now_local() -> str:
    return timezone.localtime().strftime("%Y-%m-%d %H:%M")


def retirement_context(retirement: Retirement, *, verify_url: str) -> dict[str, Any]:
    blocks = list(retirement.blocks.select_related("account").order_by("series", "start"))
    account = RegistryAccount.objects.select_related("owner_org").get(pk=retirement.account_id)
    with translation.override(PRIMARY_LANGUAGE):
        account_text = account_label(account)
    return {
        "L": labels(),
        "r": retirement,
        "purpose": _both(retirement.get_purpose_display),
        "account": account_text,
        "blocks": [_block_row(b) for b in blocks],
        "projects": _distinct([b.project_code for b in blocks]),
        "vintages": _distinct([b.vintage for b in blocks]),
        "methodologies": _distinct([b.methodology_code for b in blocks]),
        "verify_url": verify_url,
        "qr": qr_data_uri(verify_url),
        "generated_at": _now_local(),
    }


def current_issued_blocks(application: Application) -> list[SerialBlock]:
    """The blocks issued for the application that still stand: roots of its lineages with a unit held or retired
    (a cancellation takes every unit of an issuance, so cancelled issuances drop out whole)."""
    blocks = {b.pk: b for b in application.blocks.select_related("system", "account")}

    def root(b: SerialBlock) -> SerialBlock:
        while b.parent_id is not None:
            b = blocks[b.parent_id]
        return b

    live = {
        root(b).pk for b in blocks.values() if b.state in (SerialBlock.State.HELD, SerialBlock.State.RETIRED)
    }
    return sorted((blocks[pk] for pk in live), key=lambda b: (b.series, b.start))


def issuance_context(application: Application, *, verify_url: str) -> dict[str, Any]:
    app = Application.objects.select_related("applicant", "applicant_org", "methodology", "factor").get(
        pk=application.pk
    )
    members = list(app.members.select_related("system", "credit_account__owner_org").order_by("system__code"))
    issued = current_issued_blocks(app)
    credited_by_system = {m.system_id: m.credit_account for m in members if m.credit_account_id}
    rows = []
    for b in issued:
        row = _block_row(b)
        credited = credited_by_system.get(b.system_id) if b.system_id else None
        row["account"] = (credited or b.account).number
        row["system"] = b.system.code if b.system_id else ""
        rows.append(row)
    with translation.override(PRIMARY_LANGUAGE):
        applicant = app.applicant_org.display_name if app.applicant_org_id else app.applicant.display_name
        accounts = {}
        for m in members:
            if m.credit_account_id:
                accounts[m.credit_account.number] = account_label(m.credit_account)
        for b in issued:
            if b.system_id not in credited_by_system:
                accounts.setdefault(b.account.number, account_label(b.account))
    factor = app.factor
    return {
        "L": labels(),
        "app": app,
        "kind": _both(app.get_kind_display),
        "applicant": applicant,
        "methodology_name": _both(lambda: app.methodology.name),
        "factor": factor,
        "factor_value": factor.value,
        "members": [
            {
                "system": m.system.code,
                "units": m.units,
                "account": m.credit_account.number if m.credit_account_id else "",
            }
            for m in members
        ],
        "blocks": rows,
        "issued_total": sum(r["quantity"] for r in rows),
        "accounts": [accounts[k] for k in sorted(accounts)],
        "cancellations": list(app.cancellations.order_by("created_at")),
        "verify_url": verify_url,
        "qr": qr_data_uri(verify_url),
        "generated_at": _now_local(),
    }


def render_html(template: str, context: dict[str, Any]) -> str:
    with translation.override(PRIMARY_LANGUAGE):
        return render_to_string(template, context)


def html_to_pdf(html: str) -> bytes:
    """A4 PDF of the certificate HTML; fonts come from fontconfig (Noto Sans CJK SC from fonts-noto-cjk)."""
    from weasyprint import HTML

    return bytes(HTML(string=html).write_pdf())


def retirement_html(retirement: Retirement, *, verify_url: str) -> str:
    return render_html("registry/cert_retirement.html", retirement_context(retirement, verify_url=verify_url))


def issuance_html(application: Application, *, verify_url: str) -> str:
    return render_html("registry/cert_issuance.html", issuance_context(application, verify_url=verify_url))


def retirement_pdf(retirement: Retirement, request: HttpRequest | None = None) -> bytes:
    """The certificate of a retirement; its QR code opens the public retirement record."""
    url = retirement_verification_url(retirement, request)
    return html_to_pdf(retirement_html(retirement, verify_url=url))


def issuance_pdf(application: Application, request: HttpRequest | None = None) -> bytes:
    """The certificate of an application's issuance; its QR code opens the public registry filtered to it."""
    url = issuance_verification_url(application, request)
    return html_to_pdf(issuance_html(application, verify_url=url))
