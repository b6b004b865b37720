"""Meters of every kind, their readings, daily and monthly rollups, ingest batches and the quarantine.

Readings and rollups are large time-series tables: they carry the meter id in their primary key, receive no
foreign keys, and can later be distributed by meter id (DESIGN.md §5).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models, router
from django.utils.translation import gettext_lazy as _


class Quantity(models.TextChoices):
    ELECTRICITY = "electricity", _("Electricity (kWh)")
    WATER = "water", _("Water (m³)")
    GAS = "gas", _("Gas (m³)")
    COOLING = "cooling", _("Cooling (kWh)")
    HEAT = "heat", _("Heat (kWh)")


CANONICAL_UNIT = {
    Quantity.ELECTRICITY: "kWh",
    Quantity.WATER: "m3",
    Quantity.GAS: "m3",
    Quantity.COOLING: "kWh",
    Quantity.HEAT: "kWh",
}


class Meter(models.Model):
    """A physical or virtual meter. `subject_kind`/`subject_id` name what it measures (a PV system, a building...),
    so that each kind of subject can plug its own validation rules into ingest."""

    class Purpose(models.TextChoices):
        PV_GENERATION = "pv_generation", _("PV generation meter")
        PV_BIDIRECTIONAL = "pv_bidirectional", _("Bidirectional meter (generation and export)")
        BUILDING = "building", _("Building energy meter")
        OTHER = "other", _("Other")

    serial = models.CharField(_("meter serial number"), max_length=64, unique=True)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    quantity = models.CharField(
        _("quantity"), max_length=20, choices=Quantity.choices, default=Quantity.ELECTRICITY
    )
    sub_item = models.CharField(
        _("sub-item code"), max_length=10, blank=True, help_text=_("e.g. 01A00 lighting")
    )
    subject_kind = models.CharField(_("subject kind"), max_length=30, db_index=True)
    subject_id = models.BigIntegerField(_("subject id"), db_index=True)
    installed_at = models.DateTimeField(_("installed at"), null=True, blank=True)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    initial_register = models.DecimalField(
        _("initial register reading"), max_digits=16, decimal_places=4, null=True, blank=True
    )
    register_wrap = models.DecimalField(
        _("register wraps at"),
        max_digits=16,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=_("Set only for registers known to roll over (e.g. 99999.9)."),
    )
    interval_minutes = models.PositiveIntegerField(_("expected interval (minutes)"), default=60)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("meter")
        verbose_name_plural = _("meters")
        indexes = [models.Index(fields=["subject_kind", "subject_id"], name="meter_subject_idx")]

    def __str__(self) -> str:
        return self.serial


class MeterReplacement(models.Model):
    """A meter exchanged for another: final reading of the old one, first reading of the new one."""

    old_meter = models.OneToOneField(
        Meter, on_delete=models.PROTECT, related_name="replaced_by", verbose_name=_("old meter")
    )
    new_meter = models.OneToOneField(
        Meter, on_delete=models.PROTECT, related_name="replaces", verbose_name=_("new meter")
    )
    replaced_at = models.DateTimeField(_("replaced at"))
    old_final_reading = models.DecimalField(
        _("old meter final reading (kWh)"), max_digits=16, decimal_places=4
    )
    new_initial_reading = models.DecimalField(
        _("new meter first reading (kWh)"), max_digits=16, decimal_places=4
    )
    work_order = models.CharField(_("work order"), max_length=100, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, verbose_name=_("recorded by")
    )
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("meter replacement")
        verbose_name_plural = _("meter replacements")


class _PartitionedQuerySet(models.QuerySet):
    """bulk_create() first makes sure the range partitions of the rows exist (PostgreSQL; metering.partitions)."""

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        _ensure_partitions(self.model, objs, self.db)
        return super().bulk_create(objs, *args, **kwargs)


def _ensure_partitions(model: type[models.Model], objs: list[Any], using: str) -> None:
    from lowcarbon.metering import partitions

    scheme = partitions.PARTITIONED[model._meta.db_table]
    partitions.ensure_partitions(
        (v for o in objs if (v := getattr(o, scheme.column)) is not None), scheme, using=using
    )


class _PartitionedModel(models.Model):
    """A model whose table is range-partitioned on PostgreSQL: save() makes sure the row's partition exists.
    (Writers that bypass the ORM call metering.partitions.ensure_partitions themselves, as the ingest does.)"""

    objects = _PartitionedQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        _ensure_partitions(
            type(self), [self], kwargs.get("using") or router.db_for_write(type(self), instance=self)
        )
        super().save(*args, **kwargs)


class Reading(_PartitionedModel):
    """One accepted interval reading. `ts` is the end of the interval (UTC); `energy` is the interval quantity in
    the meter's canonical unit (derived from the register for cumulative readings); `cumulative` is the register
    as read, when one was sent; `export` the exported energy of a bidirectional meter over the same interval."""

    pk = models.CompositePrimaryKey("meter_id", "ts")
    meter_id = models.BigIntegerField()
    ts = models.DateTimeField()
    interval_s = models.PositiveIntegerField()
    energy = models.DecimalField(max_digits=16, decimal_places=4)
    cumulative = models.DecimalField(max_digits=16, decimal_places=4, null=True)
    export = models.DecimalField(max_digits=16, decimal_places=4, null=True)
    export_cumulative = models.DecimalField(max_digits=16, decimal_places=4, null=True)
    batch_id = models.BigIntegerField(null=True)

    class Meta:
        verbose_name = _("reading")
        verbose_name_plural = _("readings")


class DailyRollup(_PartitionedModel):
    """Sum of one meter's accepted readings over a local (Asia/Shanghai) day, maintained at ingest."""

    pk = models.CompositePrimaryKey("meter_id", "day")
    meter_id = models.BigIntegerField()
    day = models.DateField()
    energy = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    export = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    n_readings = models.PositiveIntegerField(default=0)
    covered_s = models.PositiveIntegerField(default=0)
    max_energy = models.DecimalField(max_digits=16, decimal_places=4, default=0)

    class Meta:
        verbose_name = _("daily rollup")
        verbose_name_plural = _("daily rollups")


class MonthlyRollup(models.Model):
    """Sum of one meter's accepted readings over a local calendar month (`month` is its first day)."""

    pk = models.CompositePrimaryKey("meter_id", "month")
    meter_id = models.BigIntegerField()
    month = models.DateField()
    energy = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    export = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    n_readings = models.PositiveIntegerField(default=0)
    covered_s = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("monthly rollup")
        verbose_name_plural = _("monthly rollups")


class IngestBatch(models.Model):
    """One delivery of readings (a file, an API call, an MQTT session) and what became of its rows."""

    class Source(models.TextChoices):
        UPLOAD = "upload", _("File upload")
        API = "api", _("API")
        CLI = "cli", _("Command line")
        MQTT = "mqtt", _("MQTT")
        DEMO = "demo", _("Demo data")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        verbose_name=_("submitted by"),
    )
    client_key = models.CharField(_("client key"), max_length=100, blank=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_accepted = models.PositiveIntegerField(_("accepted"), default=0)
    rows_duplicate = models.PositiveIntegerField(_("identical duplicates"), default=0)
    rows_rejected = models.PositiveIntegerField(_("rejected"), default=0)
    rejected_by_reason = models.JSONField(_("rejected by reason"), default=dict)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("ingest batch")
        verbose_name_plural = _("ingest batches")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["submitted_by", "client_key"],
                condition=~models.Q(client_key=""),
                name="batch_client_key_unique",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.filename or self.get_source_display()}"


class QuarantinedRow(models.Model):
    """A rejected row, kept with its file, row number, reason code, field and original text."""

    batch = models.ForeignKey(
        IngestBatch, on_delete=models.CASCADE, related_name="quarantine", verbose_name=_("batch")
    )
    row_number = models.PositiveIntegerField(_("row"))
    reason = models.CharField(_("reason code"), max_length=40, db_index=True)
    field = models.CharField(_("field"), max_length=40, blank=True)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    meter_serial = models.CharField(_("meter serial number"), max_length=64, blank=True, db_index=True)
    raw = models.TextField(_("original text"))

    class Meta:
        verbose_name = _("quarantined row")
        verbose_name_plural = _("quarantined rows")
        ordering = ["batch", "row_number"]

    def __str__(self) -> str:
        return f"#{self.batch_id} row {self.row_number}: {self.reason}"


class DataFlag(models.Model):
    """A data-quality flag on a meter and day (gap, stuck value ...): shown, never used to invent data. One per
    meter, day and code; like the rollups it grows with meters × days, so it is keyed by the meter id too."""

    pk = models.CompositePrimaryKey("meter_id", "day", "code")
    meter_id = models.BigIntegerField()
    day = models.DateField()
    code = models.CharField(max_length=40)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("data flag")
        verbose_name_plural = _("data flags")
