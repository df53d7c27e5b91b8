"""What the workers know about the outside world: each client's registration at the
authorization server. The registration access token is a secret we must send back, so it is kept
encrypted and never leaves this model (not in the API, logs or audit events).

And what the gateway saw: its data-access log, loaded from its log file (``DataAccessEntry``,
with the collector's position in the file, ``AccessLogCursor``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from portal.db import InSubquery
from provisioning.crypto import decrypt, encrypt
from tenants.models import Membership, OAuthClient, Organisation

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


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


class DataAccessEntryQuerySet(models.QuerySet["DataAccessEntry"]):
    def visible_to(self, user: User | AnonymousUser) -> DataAccessEntryQuerySet:
        """NHN staff see every call; a kommune's members (admins and readers) the calls to their
        kommune; a vendor's members the calls of their vendor's clients; anyone else none."""
        if not user.is_authenticated:
            return self.none()
        roles = Membership.objects.roles_of(user)
        if roles.nhn_staff:
            return self
        kinds = roles.kinds
        kommuner = [pk for pk, kind in kinds.items() if kind == Organisation.Kind.KOMMUNE]
        vendors = [pk for pk, kind in kinds.items() if kind == Organisation.Kind.VENDOR]
        if not (kommuner or vendors):
            return self.none()
        # Both sides as index conditions PostgreSQL can OR together (``InSubquery``).
        seen = Q()
        if kommuner:
            orgnrs = Organisation.objects.filter(pk__in=kommuner).order_by().values("orgnr")
            seen |= Q(InSubquery("kommune", orgnrs))
        if vendors:
            clients = OAuthClient.objects.filter(vendor__in=vendors).exclude(client_id="")
            seen |= Q(InSubquery("client_id", clients.order_by().values("client_id")))
        return self.filter(seen)


class DataAccessEntry(models.Model):
    """One request the gateway answered, as its data-access log recorded it: who called (the
    token's client_id), which kommune's service, how, and with what answer. Refused calls are
    here too. Loaded by ``provisioning.access_log``; kept for DATA_ACCESS_RETENTION_DAYS.

    The kommune, service and client are kept as the gateway named them (orgnr, service code,
    client_id), not as keys: the log records what happened, also for a client or kommune the
    portal does not know (a refused call) or no longer holds.
    """

    occurred_at = models.DateTimeField(_("time"))
    client_id = models.CharField(_("client_id"), max_length=200, blank=True)
    kommune = models.CharField(_("kommune (orgnr)"), max_length=9, blank=True)
    service = models.CharField(_("service"), max_length=50, blank=True)
    access = models.CharField(_("access"), max_length=5, blank=True)
    environment = models.CharField(_("environment"), max_length=10, blank=True)
    method = models.CharField(_("method"), max_length=16)
    path = models.CharField(_("path"), max_length=1024)
    status = models.SmallIntegerField(_("status"))
    duration_ms = models.IntegerField(_("duration (ms)"))
    # Answered by the gateway itself, without reaching the FHIR service: refused (401, 403,
    # 404, ...) or unparseable. Not the same as a 4xx, which the service may answer too.
    refused = models.BooleanField(_("refused by the gateway"))

    objects = DataAccessEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("data-access log entry")
        verbose_name_plural = _("data-access log")
        indexes = [
            # NHN's questions, the purge and the national overview: by time.
            models.Index(fields=["occurred_at"], name="provisioning_dae_time"),
            # A kommune's: its calls, newest first.
            models.Index(fields=["kommune", "occurred_at"], name="provisioning_dae_kommune"),
            # A vendor's: its clients' calls.
            models.Index(fields=["client_id", "occurred_at"], name="provisioning_dae_client"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at} {self.client_id or '-'} {self.method} {self.path} {self.status}"


class AccessLogCursor(models.Model):
    """How far the collector has loaded one gateway's access log: the file (device and inode,
    and its first bytes, since a new file may get a deleted one's inode) and the byte offset
    after the last line loaded. Written in the same transaction as the rows it covers, so a
    collector that stops anywhere loads each line exactly once when it starts again."""

    source = models.CharField(_("source"), max_length=100, primary_key=True)
    device = models.BigIntegerField(null=True)
    inode = models.BigIntegerField(null=True)
    head = models.BinaryField(max_length=64, default=b"")
    offset = models.BigIntegerField(default=0)
    #: Lines loaded as entries, and lines that were none (HAProxy's own notices, damage).
    lines = models.BigIntegerField(default=0)
    skipped = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("access log cursor")
        verbose_name_plural = _("access log cursors")

    def __str__(self) -> str:
        return f"{self.source} at {self.offset}"


class GatewayTrafficDay(models.Model):
    """The calls through the gateway to one service on one local day, and the refused among
    them, every kommune together: the national overview's figure
    (``provisioning.data_access.gateway_traffic``). The collector adds each batch's calls in the
    batch's transaction, so the counts are exactly the log's. Counts hold no personal data, so
    they stay when the log's entries are purged."""

    day = models.DateField(_("day"))
    service = models.CharField(_("service"), max_length=50, blank=True)
    calls = models.BigIntegerField(_("calls"), default=0)
    refused = models.BigIntegerField(_("refused by the gateway"), default=0)

    class Meta:
        verbose_name = _("gateway traffic on a day")
        verbose_name_plural = _("gateway traffic by day")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "service"], name="provisioning_gatewaytrafficday_day_service"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.service or '-'}: {self.calls} ({self.refused} refused)"
