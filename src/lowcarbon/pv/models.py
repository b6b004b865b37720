"""Communities, distributed PV systems, their evidence, other-programme claims, aggregator consents and
plausibility flags."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts.models import Organisation


class Community(models.Model):
    """A community (社区) of Xiaolan Town, as data; coordinates are approximate centres for maps."""

    code = models.SlugField(_("code"), max_length=30, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=50)
    name_en = models.CharField(_("name (English)"), max_length=80)
    latitude = models.DecimalField(_("latitude"), max_digits=8, decimal_places=5)
    longitude = models.DecimalField(_("longitude"), max_digits=8, decimal_places=5)

    class Meta:
        verbose_name = _("community")
        verbose_name_plural = _("communities")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "").startswith("en") else self.name_zh


class OwnerType(models.TextChoices):
    HOUSEHOLD = "household", _("Household")
    ENTERPRISE = "enterprise", _("Enterprise")
    INSTITUTION = "institution", _("Institution")


class MeteringArrangement(models.TextChoices):
    GENERATION = "generation_meter", _("PV generation meter")
    BIDIRECTIONAL = "bidirectional", _("Bidirectional meter")


class PVSystem(models.Model):
    """A grid-connected distributed PV system and its registration data."""

    code = models.CharField(_("system code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=200)
    owner_type = models.CharField(_("owner type"), max_length=20, choices=OwnerType.choices)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="pv_systems",
        verbose_name=_("owner (person)"),
    )
    owner_org = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="pv_systems",
        verbose_name=_("owner (organisation)"),
    )
    address = models.CharField(_("address"), max_length=300)
    community = models.ForeignKey(Community, on_delete=models.PROTECT, verbose_name=_("community"))
    latitude = models.DecimalField(_("latitude"), max_digits=8, decimal_places=5)
    longitude = models.DecimalField(_("longitude"), max_digits=8, decimal_places=5)
    capacity_kwp = models.DecimalField(_("capacity (kWp)"), max_digits=10, decimal_places=3)
    tilt_deg = models.DecimalField(_("tilt (°)"), max_digits=5, decimal_places=2)
    azimuth_deg = models.DecimalField(_("azimuth (°, 180 = south)"), max_digits=5, decimal_places=2)
    grid_connection_date = models.DateField(_("grid-connection date"))
    metering = models.CharField(_("metering arrangement"), max_length=20, choices=MeteringArrangement.choices)
    installer = models.CharField(_("installer"), max_length=200, blank=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("registered by"),
    )
    registered_at = models.DateTimeField(_("registered at"), auto_now_add=True)
    is_demo = models.BooleanField(_("demo data"), default=False)

    class Meta:
        verbose_name = _("PV system")
        verbose_name_plural = _("PV systems")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(owner_user__isnull=False) | models.Q(owner_org__isnull=False),
                name="pvsystem_has_owner",
            ),
            models.CheckConstraint(condition=models.Q(capacity_kwp__gt=0), name="pvsystem_capacity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def owner_display(self) -> str:
        if self.owner_org_id:
            return self.owner_org.display_name
        return self.owner_user.display_name if self.owner_user else ""


class Evidence(models.Model):
    """A document supporting a registration: grid-connection acceptance, meter photo, proof of ownership."""

    class Kind(models.TextChoices):
        GRID_ACCEPTANCE = "grid_acceptance", _("Grid-connection acceptance record")
        METER_PHOTO = "meter_photo", _("Meter photo")
        OWNERSHIP = "ownership", _("Proof of ownership")
        SETTLEMENT = "settlement", _("Electricity settlement statement")
        OTHER = "other", _("Other")

    system = models.ForeignKey(
        PVSystem, on_delete=models.CASCADE, related_name="evidence", verbose_name=_("PV system")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    file = models.FileField(_("file"), upload_to="evidence/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, verbose_name=_("uploaded by")
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("evidence file")
        verbose_name_plural = _("evidence files")


class ProgrammeClaim(models.Model):
    """A period of the system's generation already claimed in another programme (CCER, green certificates)."""

    class Programme(models.TextChoices):
        CCER = "ccer", _("CCER")
        GEC = "gec", _("Green electricity certificates (绿证)")
        OTHER = "other", _("Other programme")

    system = models.ForeignKey(
        PVSystem, on_delete=models.CASCADE, related_name="programme_claims", verbose_name=_("PV system")
    )
    programme = models.CharField(_("programme"), max_length=10, choices=Programme.choices)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    reference = models.CharField(_("reference"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("other-programme claim")
        verbose_name_plural = _("other-programme claims")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")), name="claim_period_order"
            )
        ]


class ManagementConsent(models.Model):
    """The owner's recorded consent that an aggregator manages a system (and, later, to whom units are credited)."""

    system = models.ForeignKey(
        PVSystem, on_delete=models.CASCADE, related_name="consents", verbose_name=_("PV system")
    )
    aggregator = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="managed_consents", verbose_name=_("aggregator")
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("granted by")
    )
    granted_at = models.DateTimeField(_("granted at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    credit_to_aggregator = models.BooleanField(_("units credited to the aggregator"), default=False)
    document = models.CharField(_("consent document reference"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("management consent")
        verbose_name_plural = _("management consents")

    def __str__(self) -> str:
        return f"{self.system.code} → {self.aggregator}"


class PlausibilityFlag(models.Model):
    """A failed plausibility check for a system and month (domain.md §4.2, §4.4). Reject-level flags exclude the
    month from quantification until a reviewer clears them."""

    class Severity(models.TextChoices):
        WARN = "warn", _("Warning")
        REJECT = "reject", _("Reject")

    system = models.ForeignKey(
        PVSystem, on_delete=models.CASCADE, related_name="flags", verbose_name=_("PV system")
    )
    month = models.DateField(_("month"))
    code = models.CharField(_("check"), max_length=40)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    value = models.DecimalField(_("value"), max_digits=18, decimal_places=4)
    limit = models.DecimalField(_("limit"), max_digits=18, decimal_places=4)
    parameter_versions = models.JSONField(_("parameter versions"), default=dict)
    detected_at = models.DateTimeField(_("detected at"), auto_now=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("cleared by"),
    )
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    clear_note = models.TextField(_("reviewer note"), blank=True)

    class Meta:
        verbose_name = _("plausibility flag")
        verbose_name_plural = _("plausibility flags")
        ordering = ["system", "month", "code"]
        constraints = [models.UniqueConstraint(fields=["system", "month", "code"], name="flag_unique")]

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


class ClearSkyProfile(models.Model):
    """Cached clear-sky monthly yield (kWh per kWp) for a location/orientation and year, from pvlib."""

    lat = models.DecimalField(max_digits=6, decimal_places=2)
    lon = models.DecimalField(max_digits=6, decimal_places=2)
    tilt = models.DecimalField(max_digits=5, decimal_places=1)
    azimuth = models.DecimalField(max_digits=5, decimal_places=1)
    year = models.PositiveIntegerField()
    monthly_kwh_per_kwp = models.JSONField()
    model_version = models.CharField(max_length=40)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lat", "lon", "tilt", "azimuth", "year", "model_version"], name="clearsky_unique"
            )
        ]
