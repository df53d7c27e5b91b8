"""The gateway's configuration, from Django settings."""

from __future__ import annotations

from django.conf import settings

from provisioning.gateway import GatewayConfig


def gateway_config() -> GatewayConfig:
    return GatewayConfig(
        directory=settings.GATEWAY_DIR,
        bind=settings.GATEWAY_BIND,
        upstream=settings.GATEWAY_UPSTREAM,
        issuer=settings.OIDC_OP_ISSUER,
        audience=settings.GATEWAY_AUDIENCE,
    )
