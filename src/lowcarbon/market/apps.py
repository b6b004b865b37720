from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketConfig(AppConfig):
    name = "lowcarbon.market"
    label = "market"
    verbose_name = _("Trade matching")

    def ready(self) -> None:
        from lowcarbon.market.services import check_offset_retirement
        from lowcarbon.registry.ledger import register_retire_check

        register_retire_check(check_offset_retirement)
