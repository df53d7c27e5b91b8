"""Encryption at rest for secrets the portal must send back (registration access tokens)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet
from django.conf import settings


def _fernet() -> Fernet:
    # Any length of secret becomes a valid Fernet key; rotating the setting needs a re-encryption.
    digest = hashlib.sha256(settings.TILGANG_ENCRYPTION_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()
