"""The gateways' configuration and their data-access log, from Django settings."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from provisioning.gateway import GatewayConfig


def gateway_configs() -> list[GatewayConfig]:
    """Every gateway: those of ``GATEWAYS``, or, when it is empty, the one gateway of
    ``GATEWAY_DIR``, ``GATEWAY_BIND`` and ``GATEWAY_UPSTREAM`` (``make run``, the bench)."""
    listed: list[dict[str, str]] = settings.GATEWAYS or [
        {
            "name": "gateway",
            "dir": str(settings.GATEWAY_DIR),
            "bind": settings.GATEWAY_BIND,
            "upstream": settings.GATEWAY_UPSTREAM,
        }
    ]
    return [
        GatewayConfig(
            name=item["name"],
            directory=Path(item["dir"]),
            bind=item["bind"],
            upstream=item.get("upstream") or settings.GATEWAY_UPSTREAM,
            issuer=settings.OIDC_OP_ISSUER,
            audience=settings.GATEWAY_AUDIENCE,
        )
        for item in listed
    ]


def gateway_config(name: str | None = None) -> GatewayConfig:
    """One gateway's configuration: the one named, or the first (the only one, by default)."""
    configs = gateway_configs()
    if name is None:
        return configs[0]
    for config in configs:
        if config.name == name:
            return config
    raise KeyError(f"no gateway named {name!r} in GATEWAYS")


def access_log_path() -> Path:
    """The file the first gateway's data-access log is appended to (``scripts/gateway.sh``);
    with several gateways, each appends to its own ``access.log`` and the collector is given
    each (``gateway_log_collect --log NAME=PATH``)."""
    configured: str = settings.GATEWAY_ACCESS_LOG
    return Path(configured) if configured else gateway_config().access_log


def access_log_sources() -> list[tuple[str, Path]]:
    """Each gateway's data-access log and the name of its collector's cursor: the one of
    ``access_log_path`` (cursor ``gateway``) or, with ``GATEWAYS``, each gateway's
    ``access.log`` under its own name."""
    if not settings.GATEWAYS:
        return [("gateway", access_log_path())]
    return [(config.name, config.access_log) for config in gateway_configs()]
