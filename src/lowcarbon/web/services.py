"""Read-only summaries for the home page (read from rollups and quantification tables, never raw readings)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum


def home_summary(user) -> dict:  # type: ignore[no-untyped-def]
    from lowcarbon.methodology.models import Quantification
    from lowcarbon.pv.access import visible_systems
    from lowcarbon.pv.models import PVSystem

    public = PVSystem.objects.all()
    totals = {
        "systems": public.count(),
        "capacity_kwp": public.aggregate(s=Sum("capacity_kwp"))["s"] or Decimal(0),
        "er_kg": Quantification.objects.filter(superseded_at__isnull=True).aggregate(s=Sum("er_kg"))["s"]
        or Decimal(0),
        "generation_kwh": Quantification.objects.filter(superseded_at__isnull=True).aggregate(
            s=Sum("generation_kwh")
        )["s"]
        or Decimal(0),
    }
    mine = None
    if user.is_authenticated:
        systems = visible_systems(user)
        ids = list(systems.values_list("id", flat=True))
        q = Quantification.objects.filter(superseded_at__isnull=True, system_id__in=ids)
        mine = {
            "systems": systems.count(),
            "capacity_kwp": systems.aggregate(s=Sum("capacity_kwp"))["s"] or Decimal(0),
            "er_kg": q.aggregate(s=Sum("er_kg"))["s"] or Decimal(0),
            "generation_kwh": q.aggregate(s=Sum("generation_kwh"))["s"] or Decimal(0),
        }
    return {"totals": totals, "mine": mine}
