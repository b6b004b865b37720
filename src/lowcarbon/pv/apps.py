from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PvConfig(AppConfig):
    name = "lowcarbon.pv"
    label = "pv"
    verbose_name = _("PV systems")

    def ready(self) -> None:
        # plug the PV rules (grid-connection date, physical ceiling, export <= generation) into metering
        from lowcarbon.pv import meter_rules  # noqa: F401
