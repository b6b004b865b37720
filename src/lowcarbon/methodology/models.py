"""Methodologies, versioned grid emission factors and quantification results (domain.md §2.3–2.4)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from lowcarbon.methodology.domain.quantify import combined_margin


class Methodology(models.Model):
    """A filed methodology version, e.g. the Guangdong distributed-PV carbon-inclusion methodology 2017 V01."""

    code = models.CharField(_("code"), max_length=40, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    version = models.CharField(_("version"), max_length=20)
    effective_from = models.DateField(_("effective from"))
    effective_to = models.DateField(_("effective to"), null=True, blank=True)
    source = models.TextField(_("source"))

    class Meta:
        verbose_name = _("methodology")
        verbose_name_plural = _("methodologies")
        ordering = ["effective_from"]

    def __str__(self) -> str:
        return f"{self.code}"

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "").startswith("en") else self.name_zh


class GridFactor(models.Model):
    """One edition of a grid emission factor (tCO2/MWh = kgCO2/kWh) with its source. Records are never edited once
    used: a new edition is a new record, and each quantification keeps the record it used."""

    class Kind(models.TextChoices):
        BASELINE_CM = "baseline_cm", _("Baseline combined margin (OM/BM)")
        GRID_AVG = "grid_avg", _("Average grid factor")

    code = models.CharField(_("code"), max_length=60, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    scope = models.CharField(_("scope"), max_length=60, help_text=_("e.g. regional:南方"))
    edition_year = models.PositiveIntegerField(_("edition year"))
    ef_om = models.DecimalField(
        _("operating margin EF_OM"), max_digits=8, decimal_places=4, null=True, blank=True
    )
    ef_bm = models.DecimalField(
        _("build margin EF_BM"), max_digits=8, decimal_places=4, null=True, blank=True
    )
    w_om = models.DecimalField(_("weight w_OM"), max_digits=5, decimal_places=4, null=True, blank=True)
    w_bm = models.DecimalField(_("weight w_BM"), max_digits=5, decimal_places=4, null=True, blank=True)
    ef_avg = models.DecimalField(_("average factor"), max_digits=8, decimal_places=4, null=True, blank=True)
    source = models.TextField(_("source"))
    confidence = models.CharField(_("confidence"), max_length=4)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("grid emission factor")
        verbose_name_plural = _("grid emission factors")
        ordering = ["-edition_year", "code"]

    def __str__(self) -> str:
        return self.code

    @property
    def value(self):  # type: ignore[no-untyped-def]
        """kgCO2/kWh used for crediting: EF_CM = w_OM·EF_OM + w_BM·EF_BM, or the average factor."""
        if self.kind == self.Kind.BASELINE_CM:
            return combined_margin(self.ef_om, self.ef_bm, self.w_om, self.w_bm)
        return self.ef_avg


class FactorAssignment(models.Model):
    """Which grid factor a methodology uses for generation from a date on (editable, versioned by date)."""

    methodology = models.ForeignKey(
        Methodology,
        on_delete=models.PROTECT,
        related_name="factor_assignments",
        verbose_name=_("methodology"),
    )
    factor = models.ForeignKey(GridFactor, on_delete=models.PROTECT, verbose_name=_("grid factor"))
    valid_from = models.DateField(_("valid from"))
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("factor assignment")
        verbose_name_plural = _("factor assignments")
        constraints = [
            models.UniqueConstraint(fields=["methodology", "valid_from"], name="factor_assignment_unique")
        ]


class Quantification(models.Model):
    """Avoided emissions of one PV system in one month: generation (kWh) × EF_CM (kgCO2/kWh) = kg CO2e, with the
    methodology and factor record used. Rows are never changed: a recomputation with different inputs creates a new
    row and marks the old one superseded."""

    system_id = models.BigIntegerField(db_index=True)
    month = models.DateField(_("month"))
    methodology = models.ForeignKey(Methodology, on_delete=models.PROTECT, verbose_name=_("methodology"))
    factor = models.ForeignKey(GridFactor, on_delete=models.PROTECT, verbose_name=_("grid factor"))
    ef_cm = models.DecimalField(_("EF_CM (kgCO2/kWh)"), max_digits=10, decimal_places=6)
    generation_kwh = models.DecimalField(_("generation (kWh)"), max_digits=16, decimal_places=4)
    export_kwh = models.DecimalField(_("export (kWh)"), max_digits=16, decimal_places=4)
    er_kg = models.DecimalField(_("avoided emissions (kg CO2e)"), max_digits=16, decimal_places=3)
    computed_at = models.DateTimeField(_("computed at"), auto_now_add=True)
    superseded_at = models.DateTimeField(_("superseded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("quantification")
        verbose_name_plural = _("quantifications")
        ordering = ["system_id", "month"]
        constraints = [
            models.UniqueConstraint(
                fields=["system_id", "month"],
                condition=models.Q(superseded_at__isnull=True),
                name="quantification_current_unique",
            )
        ]
        indexes = [models.Index(fields=["system_id", "month"], name="quant_sys_month_idx")]
