"""Forms of the market pages: shape only (types, required fields); the rules live in market.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from lowcarbon.registry.models import Retirement


class AccountChoiceMixin(forms.Form):
    account = forms.ChoiceField(label=_("Registry account"))

    def __init__(self, *args: Any, accounts: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = accounts or []


RETIRE_ORDER = ["retire_on_purchase", "beneficiary", "purpose"]


class RetireFields(forms.Form):
    retire_on_purchase = forms.BooleanField(label=_("Retire the units on purchase"), required=False)
    beneficiary = forms.CharField(label=_("Beneficiary"), max_length=200, required=False)
    purpose = forms.ChoiceField(
        label=_("Purpose"), choices=[("", "—"), *Retirement.Purpose.choices], required=False
    )


class ListingForm(AccountChoiceMixin):
    quantity = forms.IntegerField(label=_("Quantity (t)"), min_value=1)
    price = forms.DecimalField(label=_("Price (CNY/t)"), decimal_places=2, max_digits=12)
    vintage = forms.TypedChoiceField(label=_("Vintage"), required=False, coerce=int, empty_value=None)
    expires_at = forms.DateTimeField(
        label=_("Valid until"),
        required=False,
        widget=forms.DateTimeInput(format="%Y-%m-%dT%H:%M", attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args: Any, vintages: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vintage"].choices = [
            ("", _("any (oldest first)")),
            *[(v, str(v)) for v in vintages or []],
        ]


class BuyRequestForm(AccountChoiceMixin, RetireFields):
    quantity = forms.IntegerField(label=_("Quantity (t)"), min_value=1)
    price = forms.DecimalField(label=_("Maximum price (CNY/t)"), decimal_places=2, max_digits=12)
    vintages = forms.CharField(
        label=_("Vintages accepted"), required=False, help_text=_("e.g. 2024, 2025; empty: any")
    )
    owner_types = forms.MultipleChoiceField(
        label=_("Owner types accepted"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[
            ("household", _("Household")),
            ("enterprise", _("Enterprise")),
            ("institution", _("Institution")),
        ],
        help_text=_("none ticked: any"),
    )
    expires_at = forms.DateTimeField(
        label=_("Valid until"),
        required=False,
        widget=forms.DateTimeInput(format="%Y-%m-%dT%H:%M", attrs={"type": "datetime-local"}),
    )
    field_order = ["account", "quantity", "price", "vintages", "owner_types", "expires_at", *RETIRE_ORDER]

    def clean_vintages(self) -> list[int]:
        text = (self.cleaned_data.get("vintages") or "").replace("，", ",")
        out = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if not part.isdigit() or not 2000 <= int(part) <= 2100:
                raise forms.ValidationError(_("“%(part)s” is not a year.") % {"part": part})
            out.append(int(part))
        return out


class TakeForm(AccountChoiceMixin, RetireFields):
    quantity = forms.IntegerField(label=_("Quantity (t)"), min_value=1)
    field_order = ["account", "quantity", *RETIRE_ORDER]


class AcceptForm(AccountChoiceMixin):
    quantity = forms.IntegerField(label=_("Quantity (t)"), min_value=1)


class AuctionForm(AccountChoiceMixin):
    quantity = forms.IntegerField(label=_("Lot (t)"), min_value=1)
    floor_price = forms.DecimalField(label=_("Floor price (CNY/t)"), decimal_places=2, max_digits=12)
    vintage = forms.TypedChoiceField(label=_("Vintage"), required=False, coerce=int, empty_value=None)
    closes_at = forms.DateTimeField(
        label=_("Bidding closes"),
        widget=forms.DateTimeInput(format="%Y-%m-%dT%H:%M", attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args: Any, vintages: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vintage"].choices = [
            ("", _("any (oldest first)")),
            *[(v, str(v)) for v in vintages or []],
        ]


class BidForm(AccountChoiceMixin, RetireFields):
    price = forms.DecimalField(label=_("Bid price (CNY/t)"), decimal_places=2, max_digits=12)
    quantity = forms.IntegerField(label=_("Quantity (t)"), min_value=1)
    field_order = ["account", "price", "quantity", *RETIRE_ORDER]


class DealForm(AccountChoiceMixin):
    buyer = forms.CharField(label=_("Buyer's account number"), max_length=20)
    quantity = forms.IntegerField(label=_("Quantity (t)"), min_value=1)
    price = forms.DecimalField(label=_("Agreed price (CNY/t)"), decimal_places=2, max_digits=12)
    vintage = forms.TypedChoiceField(label=_("Vintage"), required=False, coerce=int, empty_value=None)
    note = forms.CharField(label=_("Terms"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, vintages: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vintage"].choices = [
            ("", _("any (oldest first)")),
            *[(v, str(v)) for v in vintages or []],
        ]


class ConfirmDealForm(RetireFields):
    pass


class PaymentForm(forms.Form):
    payment_reference = forms.CharField(label=_("Payment reference"), max_length=100)


class OffsetProfileForm(forms.Form):
    account_number = forms.CharField(label=_("Account number"), max_length=20)
    year = forms.IntegerField(label=_("Compliance year"))
    verified_emissions_t = forms.IntegerField(label=_("Verified annual emissions (tCO2e)"), min_value=1)
    annual_cap_t = forms.IntegerField(label=_("Annual cap on offsets (t)"), required=False, min_value=0)
    note = forms.CharField(label=_("Source"), max_length=200, required=False)


class ReviewAlertForm(forms.Form):
    note = forms.CharField(label=_("Review note"), widget=forms.Textarea(attrs={"rows": 2}))
