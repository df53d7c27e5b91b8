"""What the workers know about the outside world: each client's registration at the
authorization server. The registration access token is a secret we must send back, so it is kept
encrypted and never leaves this model (not in the API, logs or audit events)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from provisioning.crypto import decrypt, encrypt
from tenants.models import OAuthClient


class ClientRegistration(models.Model):
    client = models.OneToOneField(
        OAuthClient, models.PROTECT, primary_key=True, related_name="registration"
    )
    server_client_id = models.CharField(_("client_id"), max_length=200, unique=True)
    registration_client_uri = models.URLField(max_length=500)
    registration_access_token_encrypted = models.TextField()
    # What we last pushed, to skip an update that would change nothing.
    metadata_hash = models.CharField(max_length=64)
    registered_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("client registration")
        verbose_name_plural = _("client registrations")

    def __str__(self) -> str:
        return self.server_client_id

    @property
    def registration_access_token(self) -> str:
        return decrypt(self.registration_access_token_encrypted)

    @registration_access_token.setter
    def registration_access_token(self, value: str) -> None:
        self.registration_access_token_encrypted = encrypt(value)
