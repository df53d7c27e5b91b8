"""Explicit hooks from tenants up to the layers above it.

``tenants`` never imports ``orders`` (the arrows run one way), yet a change here can take access
away there: a product's system type decides what its clients may be granted, a kommune's EPJ
decides the Epic-only services. Rather than let a caller forget to re-evaluate (the web page, the
API and the demo seed all change these), the tenants service itself calls the receivers
registered here, inside its own transaction, so the change and its revocations commit together.
``orders`` registers its receiver in ``OrdersConfig.ready``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from tenants.models import Organisation, Product


@dataclass(frozen=True)
class PolicyInputsChanged:
    """What changed: products whose (declared or verified) type changed, or a kommune's EPJ.
    ``environment``: only the grants of clients in that environment can be affected (a vendor's
    declaration counts in test only); None for every environment."""

    actor: User | None
    products: Sequence[Product] = ()
    kommune: Organisation | None = None
    environment: str | None = None


Receiver = Callable[[PolicyInputsChanged], None]
_receivers: list[Receiver] = []


def on_policy_inputs_changed(receiver: Receiver) -> None:
    """Register a receiver once (idempotent, so a second ``ready()`` adds nothing)."""
    if receiver not in _receivers:
        _receivers.append(receiver)


def policy_inputs_changed(change: PolicyInputsChanged) -> None:
    for receiver in _receivers:
        receiver(change)
