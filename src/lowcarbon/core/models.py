"""Versioned parameters: every assumed or remembered number ([M]/[A] in domain.md) is an editable record."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Parameter(models.Model):
    """One version of a configurable number (a limit, band or margin) with its source; versions are never edited
    in place: a change is a new version valid from a date, so results computed earlier keep their version."""

    key = models.SlugField(_("key"), max_length=80)
    version = models.PositiveIntegerField(_("version"))
    value = models.DecimalField(_("value"), max_digits=20, decimal_places=6)
    unit = models.CharField(_("unit"), max_length=40, blank=True)
    valid_from = models.DateField(_("valid from"))
    label_zh = models.CharField(_("name (Chinese)"), max_length=200)
    label_en = models.CharField(_("name (English)"), max_length=200)
    source = models.TextField(_("source"), help_text=_("Document, clause or reasoning the value comes from."))
    confidence = models.CharField(
        _("confidence"),
        max_length=2,
        choices=[
            ("C", _("confirmed")),
            ("S", _("secondary")),
            ("M", _("from memory")),
            ("A", _("assumption")),
        ],
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("parameter")
        verbose_name_plural = _("parameters")
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="parameter_key_version_unique")
        ]
        ordering = ["key", "-version"]

    def __str__(self) -> str:
        return f"{self.key} v{self.version} = {self.value} {self.unit}"

    @property
    def label(self) -> str:
        from django.utils.translation import get_language

        return self.label_en if (get_language() or "").startswith("en") else self.label_zh
