"""The gateway's configuration and its data-access log, from Django settings."""

from __future__ import annotations

from pathlib import Path

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


def access_log_path() -> Path:
    """The file the gateway's data-access log is appended to (``scripts/gateway.sh``)."""
    configured: str = settings.GATEWAY_ACCESS_LOG
    return Path(configured) if configured else gateway_config().access_log
