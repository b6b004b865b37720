"""Forms of the PV pages. They only collect and shape the input: the rules live in
`lowcarbon.pv.domain.registration` and are applied by the services, whose problems are put back on the fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts.models import Organisation, Role
from lowcarbon.metering.models import Meter
from lowcarbon.pv import services
from lowcarbon.pv.models import Community, Evidence, MeteringArrangement, OwnerType, ProgrammeClaim, PVSystem

#: how many other-programme claims the registration form offers
CLAIM_ROWS = 2
EVIDENCE_KINDS = (
    Evidence.Kind.GRID_ACCEPTANCE,
    Evidence.Kind.METER_PHOTO,
    Evidence.Kind.OWNERSHIP,
)
EVIDENCE_ACCEPT = ",".join(sorted(services.EVIDENCE_EXTENSIONS))


def community_choices() -> list[tuple[str, str]]:
    return [(c.code, f"{c.name} ({c.code})") for c in Community.objects.order_by("code")]


def _text(label: Any, *, required: bool = False, **attrs: Any) -> forms.CharField:
    return forms.CharField(
        label=label, required=False, widget=forms.TextInput(attrs={"required": required} | attrs)
    )


def _number(label: Any, *, required: bool = True, step: str = "any", **attrs: Any) -> forms.CharField:
    widget = forms.NumberInput(attrs={"step": step, "required": required, "inputmode": "decimal"} | attrs)
    return forms.CharField(label=label, required=False, widget=widget)


class ProblemsMixin:
    """Put the problems of a refused service call back on the form's fields (or above the form)."""

    field_aliases: dict[str, str] = {}

    def add_problems(self, problems: list[services.Problem]) -> None:
        for p in problems:
            name = self.field_aliases.get(p.field, p.field)
            self.add_error(name if name in self.fields else None, p.message)  # type: ignore[attr-defined]


class RegistrationForm(ProblemsMixin, forms.Form):
    """Registration of one PV system: owner, site, array, meter, evidence and claims in other programmes."""

    owner_kind = forms.ChoiceField(label=_("Owner"), widget=forms.RadioSelect)
    owner_org = forms.ChoiceField(label=_("Owning organisation"), required=False)
    owner_real_name = _text(_("Owner's real name"), autocomplete="off")
    owner_phone = _text(_("Owner's phone"), autocomplete="off", inputmode="tel")
    aggregator_org = forms.ChoiceField(label=_("Aggregator acting for the owner"), required=False)
    consent_document = _text(
        _("Consent document reference"),
    )

    name = _text(_("System name"), required=True, maxlength=200)
    address = _text(_("Address"), required=True, maxlength=300)
    community = forms.ChoiceField(
        label=_("Community"), required=False, widget=forms.Select(attrs={"required": True})
    )
    latitude = _number(_("Latitude (°N)"), min="22.2", max="22.8")
    longitude = _number(_("Longitude (°E)"), min="113.1", max="113.7")
    capacity_kwp = _number(_("Capacity (kWp)"), min="0")
    tilt_deg = _number(_("Tilt (°, 0 = flat)"), min="0", max="90")
    azimuth_deg = _number(_("Azimuth (°, 180 = south)"), min="0", max="360")
    grid_connection_date = forms.CharField(
        label=_("Grid-connection date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "required": True}),
    )
    metering = forms.ChoiceField(
        label=_("Metering arrangement"),
        choices=MeteringArrangement.choices,
        required=False,
        widget=forms.RadioSelect(attrs={"required": True}),
    )
    meter_serial = _text(_("Meter serial number"), required=True, pattern="[A-Za-z0-9_-]{4,64}", maxlength=64)
    initial_register = _number(
        _("Meter register at grid connection (kWh, optional)"), required=False, min="0"
    )
    installer = _text(_("Installer (optional)"), maxlength=200)

    evidence_grid_acceptance = forms.FileField(
        label=_("Grid-connection acceptance record"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": EVIDENCE_ACCEPT}),
    )
    evidence_meter_photo = forms.FileField(
        label=_("Meter photo"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": EVIDENCE_ACCEPT}),
    )
    evidence_ownership = forms.FileField(
        label=_("Proof of ownership"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": EVIDENCE_ACCEPT}),
    )

    def __init__(self, *args: Any, actor: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"tilt_deg": "22", "azimuth_deg": "180", "metering": "generation_meter"})
        super().__init__(*args, **kwargs)
        self.actor = actor
        kinds: list[tuple[str, Any]] = []
        if actor.has_role(Role.OWNER_HOUSEHOLD):
            kinds.append(("self", _("Myself (household)")))
        orgs = services.owner_orgs_for(actor)
        if orgs:
            kinds.append(("organisation", _("An organisation I represent")))
            self.fields["owner_org"].choices = [("", "—")] + [(str(o.pk), o.display_name) for o in orgs]
        else:
            del self.fields["owner_org"]
        if actor.is_aggregator or actor.is_registry_admin:
            kinds.append(("household", _("A household (identified by real name and phone)")))
        else:
            for name in ("owner_real_name", "owner_phone"):
                del self.fields[name]
        self.fields["owner_kind"].choices = kinds
        if kinds and not self.is_bound:
            self.initial.setdefault("owner_kind", kinds[0][0])

        aggs = services.aggregator_orgs_for(actor)
        if actor.is_registry_admin:
            aggs = list(Organisation.objects.filter(kind=Organisation.Kind.AGGREGATOR).order_by("name"))
        if aggs:
            blank = [("", _("— none (no aggregator) —"))] if actor.is_registry_admin else []
            self.fields["aggregator_org"].choices = blank + [(str(o.pk), o.display_name) for o in aggs]
            if len(aggs) == 1 and not actor.is_registry_admin:
                self.initial.setdefault("aggregator_org", str(aggs[0].pk))
        else:
            del self.fields["aggregator_org"]
            del self.fields["consent_document"]
        self.fields["community"].choices = [("", "—")] + community_choices()
        limit = services.capacity_limit_kwp()
        self.fields["capacity_kwp"].widget.attrs["max"] = format(limit.normalize(), "f")
        self.fields["capacity_kwp"].help_text = _("At most %(limit)s kWp (methodology limit in force).") % {
            "limit": format(limit.normalize(), "f")
        }

        programme_choices = [("", "—"), *ProgrammeClaim.Programme.choices]
        for i in range(CLAIM_ROWS):
            self.fields[f"claim_{i}_programme"] = forms.ChoiceField(
                label=_("Programme"), choices=programme_choices, required=False
            )
            self.fields[f"claim_{i}_start"] = forms.CharField(
                label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
            )
            self.fields[f"claim_{i}_end"] = forms.CharField(
                label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
            )
            self.fields[f"claim_{i}_reference"] = forms.CharField(
                label=_("Reference"), required=False, max_length=100
            )
        self.field_aliases = {}
        for i in range(CLAIM_ROWS):
            for src, dst in (
                ("programme", "programme"),
                ("period_start", "start"),
                ("period_end", "end"),
                ("reference", "reference"),
            ):
                self.field_aliases[f"programme_claims.{i}.{src}"] = f"claim_{i}_{dst}"

    @property
    def claim_rows(self) -> list[list[forms.BoundField]]:
        return [
            [self[f"claim_{i}_{name}"] for name in ("programme", "start", "end", "reference")]
            for i in range(CLAIM_ROWS)
        ]

    @property
    def evidence_fields(self) -> list[forms.BoundField]:
        return [self[f"evidence_{k}"] for k in EVIDENCE_KINDS]

    def service_data(self) -> dict[str, Any]:
        """The cleaned input as the `data` of `do_register_system`."""
        d = self.cleaned_data
        data = {
            k: d.get(k, "")
            for k in (
                "owner_kind",
                "owner_org",
                "owner_real_name",
                "owner_phone",
                "aggregator_org",
                "consent_document",
                "name",
                "address",
                "community",
                "latitude",
                "longitude",
                "capacity_kwp",
                "tilt_deg",
                "azimuth_deg",
                "grid_connection_date",
                "metering",
                "meter_serial",
                "initial_register",
                "installer",
            )
        }
        claims = []
        for i in range(CLAIM_ROWS):
            claim = {
                "programme": d.get(f"claim_{i}_programme", ""),
                "period_start": d.get(f"claim_{i}_start", ""),
                "period_end": d.get(f"claim_{i}_end", ""),
                "reference": d.get(f"claim_{i}_reference", ""),
            }
            if any(str(v).strip() for v in claim.values()):
                claims.append(claim)
        data["programme_claims"] = claims
        return data

    def evidence(self) -> list[tuple[str, Any]]:
        return [
            (str(k), self.cleaned_data[f"evidence_{k}"])
            for k in EVIDENCE_KINDS
            if self.cleaned_data.get(f"evidence_{k}")
        ]


class SystemFilterForm(forms.Form):
    """Filters of the system list."""

    community = forms.ChoiceField(label=_("Community"), required=False)
    owner_type = forms.ChoiceField(
        label=_("Owner type"), required=False, choices=[("", _("All"))] + list(OwnerType.choices)
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["community"].choices = [("", _("All"))] + [
            (c.code, c.name) for c in Community.objects.order_by("code")
        ]


class BulkUploadForm(forms.Form):
    """Upload of a filled-in bulk registration file."""

    file = forms.FileField(
        label=_("Filled-in template (.xlsx or .csv)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv"}),
    )
    aggregator_org = forms.ChoiceField(label=_("Register as aggregator"), required=False)

    def __init__(self, *args: Any, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        aggs = services.aggregator_orgs_for(actor)
        if actor.is_registry_admin:
            aggs = list(Organisation.objects.filter(kind=Organisation.Kind.AGGREGATOR).order_by("name"))
        blank = [("", _("— none (no consent recorded) —"))] if actor.is_registry_admin else []
        self.fields["aggregator_org"].choices = blank + [(str(o.pk), o.display_name) for o in aggs]
        if not actor.is_registry_admin:
            self.fields["aggregator_org"].required = True
            if len(aggs) == 1:
                self.initial["aggregator_org"] = str(aggs[0].pk)

    def aggregator(self) -> Organisation | None:
        pk = self.cleaned_data.get("aggregator_org")
        return Organisation.objects.filter(pk=pk).first() if pk else None


class ReplacementForm(forms.Form):
    """A meter exchange on a system."""

    old_meter = forms.ChoiceField(label=_("Meter removed"))
    new_serial = forms.CharField(
        label=_("Serial number of the new meter"),
        max_length=64,
        widget=forms.TextInput(attrs={"pattern": "[A-Za-z0-9_-]{4,64}"}),
    )
    replaced_at = forms.DateTimeField(
        label=_("Time of the exchange"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    old_final_reading = forms.DecimalField(
        label=_("Final register of the old meter (kWh)"), min_value=0, max_digits=16, decimal_places=4
    )
    new_initial_reading = forms.DecimalField(
        label=_("First register of the new meter (kWh)"),
        min_value=0,
        max_digits=16,
        decimal_places=4,
        initial=0,
    )
    work_order = forms.CharField(label=_("Work order number"), max_length=100, required=False)

    def __init__(self, *args: Any, system: PVSystem, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meters = list(
            Meter.objects.filter(
                subject_kind="pv_system", subject_id=system.pk, removed_at__isnull=True
            ).order_by("installed_at", "pk")
        )
        self.fields["old_meter"].choices = [(str(m.pk), m.serial) for m in self.meters]

    def selected_meter(self) -> Meter:
        pk = int(self.cleaned_data["old_meter"])
        return next(m for m in self.meters if m.pk == pk)


class EvidenceForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=Evidence.Kind.choices)
    file = forms.FileField(
        label=_("File"), widget=forms.ClearableFileInput(attrs={"accept": EVIDENCE_ACCEPT})
    )


class ProgrammeClaimForm(forms.Form):
    programme = forms.ChoiceField(label=_("Programme"), choices=ProgrammeClaim.Programme.choices)
    period_start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))
    reference = forms.CharField(label=_("Reference"), max_length=100, required=False)


class ConsentForm(forms.Form):
    aggregator = forms.ModelChoiceField(
        label=_("Aggregator"),
        queryset=Organisation.objects.filter(kind=Organisation.Kind.AGGREGATOR).order_by("name"),
    )
    document = forms.CharField(label=_("Consent document reference"), max_length=200)
    credit_to_aggregator = forms.BooleanField(label=_("Credit the units to the aggregator"), required=False)


class ClearFlagForm(forms.Form):
    note = forms.CharField(
        label=_("Reviewer note"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "required": True})
    )
