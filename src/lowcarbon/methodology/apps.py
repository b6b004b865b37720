from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MethodologyConfig(AppConfig):
    name = "lowcarbon.methodology"
    label = "methodology"
    verbose_name = _("Methodologies and quantification")

    def ready(self) -> None:
        from lowcarbon.metering.services import register_ingest_hook
        from lowcarbon.pv.plausibility import register_flag_cleared_hook

        register_ingest_hook(_quantify_after_ingest)
        register_flag_cleared_hook(_quantify_after_clearing)


def _quantify_after_clearing(system_id: int, month) -> None:  # type: ignore[no-untyped-def]
    """A cleared reject flag releases its month: quantify it now."""
    from lowcarbon.methodology.services import do_quantify

    do_quantify(system_ids=[system_id], start=month, end=month)


def _quantify_after_ingest(touched: dict) -> None:  # type: ignore[type-arg]
    """Re-quantify the system-months that received readings (after plausibility, which the PV app runs first)."""
    from lowcarbon.methodology.services import do_quantify
    from lowcarbon.pv.meter_rules import system_months_of

    system_months = system_months_of(touched)
    if system_months:
        months = {m for ms in system_months.values() for m in ms}
        do_quantify(system_ids=sorted(system_months), start=min(months), end=max(months))
