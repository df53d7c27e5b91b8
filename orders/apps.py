from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Service catalogue and orders")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # tenants never imports orders; it calls this when a product's type or a kommune's EPJ
        # changes, so those changes re-evaluate grants whichever door they come through.
        from orders.services import policy_inputs_reevaluate
        from tenants.hooks import on_policy_inputs_changed

        on_policy_inputs_changed(policy_inputs_reevaluate)
