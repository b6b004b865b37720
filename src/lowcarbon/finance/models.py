"""Investment and financing (投融资, the town plan's 低碳平台建设): rooftop PV projects seeking finance and the
financiers' expressions of interest in them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts.models import Organisation
from lowcarbon.pv.models import Community, PVSystem


class FinancingType(models.TextChoices):
    LOAN = "loan", _("Loan")
    LEASE = "lease", _("Finance lease")
    EQUITY = "equity", _("Equity investment")
    EMC = "emc", _("Energy performance contract (EMC, 合同能源管理)")


class ProjectKind(models.TextChoices):
    ENTERPRISE_ROOF = "enterprise_roof", _("Enterprise roof")
    INSTITUTION_ROOF = "institution_roof", _("Institution roof")
    HOUSEHOLD_PROGRAMME = "household_programme", _("Household programme (aggregator)")


class FinancingProject(models.Model):
    """A financing need published by a project owner: a planned rooftop PV installation (or an aggregator's
    household programme), the amount sought and the assumptions of its expected cash flows. Drafts are seen
    only by the owner's side; published projects by financiers too; closed ones stop taking interest."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        CLOSED = "closed", _("Closed")

    code = models.CharField(_("project code"), max_length=20, unique=True)
    name = models.CharField(_("project name"), max_length=200)
    kind = models.CharField(_("project kind"), max_length=30, choices=ProjectKind.choices)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="financing_projects",
        verbose_name=_("created by"),
    )
    owner_org = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="financing_projects",
        verbose_name=_("project owner (organisation)"),
    )
    community = models.ForeignKey(Community, on_delete=models.PROTECT, verbose_name=_("community"))
    roof_area_m2 = models.DecimalField(
        _("usable roof area (m²)"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    capacity_kwp = models.DecimalField(_("planned capacity (kWp)"), max_digits=10, decimal_places=2)
    systems = models.ManyToManyField(
        PVSystem, blank=True, related_name="financing_projects", verbose_name=_("linked PV systems")
    )
    amount_cny = models.DecimalField(_("amount sought (CNY)"), max_digits=14, decimal_places=2)
    financing_type = models.CharField(_("financing type"), max_length=10, choices=FinancingType.choices)
    tilt_deg = models.DecimalField(_("tilt (°)"), max_digits=5, decimal_places=2)
    azimuth_deg = models.DecimalField(_("azimuth (°, 180 = south)"), max_digits=5, decimal_places=2)
    self_consumption_share = models.DecimalField(_("self-consumption share"), max_digits=5, decimal_places=4)
    description = models.TextField(_("description"), blank=True)
    #: the owner's saved assumptions (strings of Decimals) and the parameter versions their defaults came from
    assumptions = models.JSONField(_("assumptions"), default=dict)
    parameter_versions = models.JSONField(_("parameter versions"), default=dict)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.DRAFT)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("financing project")
        verbose_name_plural = _("financing projects")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(capacity_kwp__gt=0), name="finproj_kwp_positive"),
            models.CheckConstraint(condition=models.Q(amount_cny__gt=0), name="finproj_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def owner_label(self) -> str:
        return self.owner_org.display_name if self.owner_org_id else self.owner_user.display_name


class Interest(models.Model):
    """A financier's expression of interest in a published project: message, amount offered, proposed terms.
    One per financier and project; the owner's side is notified."""

    project = models.ForeignKey(
        FinancingProject, on_delete=models.CASCADE, related_name="interests", verbose_name=_("project")
    )
    financier = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="financing_interests",
        verbose_name=_("financier"),
    )
    financier_org = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="financing_interests",
        verbose_name=_("financial institution"),
    )
    message = models.TextField(_("message"))
    amount_cny = models.DecimalField(_("amount offered (CNY)"), max_digits=14, decimal_places=2)
    terms = models.TextField(_("proposed terms"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("expression of interest")
        verbose_name_plural = _("expressions of interest")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "financier"], name="interest_one_per_financier"),
            models.CheckConstraint(condition=models.Q(amount_cny__gt=0), name="interest_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.project.code} · {self.financier}"

    @property
    def financier_label(self) -> str:
        return self.financier_org.display_name if self.financier_org_id else self.financier.display_name
