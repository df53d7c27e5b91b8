"""Writes of notifications. ``notify`` is the one way to tell people something: call it in the
transaction of the change it tells of, as ``audit_event_record`` is called.

    notify(
        kind="request_waiting",                  # a key of notifications.kinds.KINDS
        organisation=kommune,                    # whose people hear of it (None: every one's)
        roles=[Role.KOMMUNE_ADMIN],              # which of its people
        params={"vendor": vendor.name, ...},     # what the kind's templates read (JSON)
        link="orders:approval",                  # where to act: a URL name, filled with the
        link_args={"pk": request.pk},            #   recipient organisation's orgnr if it takes one
        once=f"key-age:{key.pk}:30",             # optional: never say this twice
    )

Each person with one of ``roles`` in the organisation (bound, active, not an automation
client) gets a ``Notification`` in their list and, after COMMIT, an e-mail in their language
(``notifications.mail``). Inside ``notifications_batched()`` the calls of the block are written
together when it ends, in a few statements however many there were (an order for every kommune).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from notifications.kinds import KINDS
from notifications.models import EmailStatus, Notice, Notification
from tenants.models import Membership, Organisation

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

EMAIL_TASK = "notifications.email_send"
#: Notifications per task message.
EMAIL_BATCH = 100
# One try on a new connection, no waiting: the sweep is the retry (as for provisioning jobs).
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}


@dataclass(frozen=True)
class _Said:
    kind: str
    organisation: Organisation | None
    roles: frozenset[str]
    params: Mapping[str, Any]
    link: str
    link_args: Mapping[str, Any]
    once: str | None


@dataclass(frozen=True)
class _Recipient:
    organisation_id: Any
    orgnr: str
    user_id: Any
    email: str
    language: str


_batch: ContextVar[list[_Said] | None] = ContextVar("notifications_batch", default=None)


@contextmanager
def notifications_batched() -> Iterator[None]:
    """Write the notifications of the ``notify`` calls in the block when it ends, together. Use
    it inside the transaction; when the block raises, nothing is written."""
    if _batch.get() is not None:
        yield
        return
    said: list[_Said] = []
    token = _batch.set(said)
    try:
        yield
    finally:
        _batch.reset(token)
    if said:
        _write(said)


def notify(
    *,
    kind: str,
    organisation: Organisation | None,
    roles: Iterable[str],
    params: Mapping[str, Any] | None = None,
    link: str = "",
    link_args: Mapping[str, Any] | None = None,
    once: str | None = None,
) -> None:
    """Tell the people with one of ``roles`` in ``organisation`` (in any organisation, when
    None) about ``kind``, in the caller's transaction (at the end of a
    ``notifications_batched`` block, when in one). Nobody to tell writes nothing; a ``once``
    key already used writes nothing either. ValueError for an unknown kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    said = _Said(
        kind=kind,
        organisation=organisation,
        roles=frozenset(roles),
        params=dict(params or {}),
        link=link,
        link_args=dict(link_args or {}),
        once=once,
    )
    batch = _batch.get()
    if batch is not None:
        batch.append(said)
    else:
        _write([said])


def _recipients(said: Sequence[_Said]) -> list[list[_Recipient]]:
    """The people each notice reaches, one query per set of roles: bound members with an
    active account, not automation clients' accounts, each person once."""
    wanted: dict[frozenset[str], set[Any]] = {}
    for one in said:
        wanted.setdefault(one.roles, set()).add(
            one.organisation.pk if one.organisation is not None else None
        )
    found: dict[tuple[frozenset[str], Any], list[_Recipient]] = {}
    for roles, organisation_ids in wanted.items():
        members = Membership.objects.filter(
            role__in=roles,
            user__isnull=False,
            user__is_active=True,
            user__automation_client__isnull=True,
        )
        if None not in organisation_ids:
            members = members.filter(organisation_id__in=organisation_ids)
        rows = members.order_by("organisation__name", "user_id").values_list(
            "organisation_id", "organisation__orgnr", "user_id", "email", "user__profile__language"
        )
        for organisation_id, orgnr, user_id, email, language in rows:
            recipient = _Recipient(
                organisation_id=organisation_id,
                orgnr=orgnr,
                user_id=user_id,
                email=email,
                language=language or settings.LANGUAGE_CODE,
            )
            found.setdefault((roles, organisation_id), []).append(recipient)
            if None in organisation_ids:
                found.setdefault((roles, None), []).append(recipient)
    result = []
    for one in said:
        key = (one.roles, one.organisation.pk if one.organisation is not None else None)
        people: dict[Any, _Recipient] = {}
        for recipient in found.get(key, []):
            people.setdefault(recipient.user_id, recipient)
        result.append(list(people.values()))
    return result


@dataclass
class _Links:
    """Paths of the portal by URL name, arguments and the recipient's organisation."""

    cache: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def path(self, name: str, args: Mapping[str, Any], orgnr: str) -> str:
        if not name:
            return ""
        kwargs = {key: str(value) for key, value in args.items()}
        key = (name, repr(sorted(kwargs.items())), orgnr)
        if key not in self.cache:
            try:
                self.cache[key] = reverse(name, kwargs={"orgnr": orgnr, **kwargs})
            except NoReverseMatch:
                self.cache[key] = reverse(name, kwargs=kwargs)
        return self.cache[key]


def _write(said: list[_Said]) -> None:
    onces = [one.once for one in said if one.once]
    used = set(Notice.objects.filter(once__in=onces).values_list("once", flat=True))
    now = timezone.now()
    links = _Links()
    notices: list[Notice] = []
    notifications: list[Notification] = []
    for one, people in zip(said, _recipients(said), strict=True):
        if not people or (one.once and one.once in used):
            continue
        if one.once:
            used.add(one.once)
        notice = Notice(
            kind=one.kind,
            organisation=one.organisation,
            params=one.params,
            once=one.once,
            created_at=now,
        )
        notices.append(notice)
        notifications += [
            Notification(
                notice=notice,
                recipient_id=person.user_id,
                organisation_id=person.organisation_id,
                link=links.path(one.link, one.link_args, person.orgnr),
                email=person.email,
                language=person.language,
                created_at=now,
                email_status=EmailStatus.PENDING if person.email else EmailStatus.NONE,
                email_next_attempt_at=now,
                email_queued_at=now,
            )
            for person in people
        ]
    if not notices:
        return
    Notice.objects.bulk_create(notices)
    Notification.objects.bulk_create(notifications, batch_size=1000)
    emails_send_on_commit(
        notification_ids=[n.pk for n in notifications if n.email_status == EmailStatus.PENDING]
    )


def emails_send_on_commit(*, notification_ids: Sequence[Any]) -> None:
    """After COMMIT, have the mailer worker send these e-mails (``notifications.email_send``,
    routed to its queue by ``CELERY_TASK_ROUTES``). With the broker down the write stands: they
    are marked unsent and the sweep sends them (``robust``: no failure reaches the caller)."""
    ids = [str(pk) for pk in notification_ids]
    for start in range(0, len(ids), EMAIL_BATCH):
        chunk = ids[start : start + EMAIL_BATCH]
        transaction.on_commit(lambda chunk=chunk: _publish(chunk), robust=True)  # type: ignore[misc]


def _publish(ids: list[str]) -> None:
    try:
        current_app.send_task(
            EMAIL_TASK, args=[ids], ignore_result=True, retry_policy=PUBLISH_RETRY
        )
    except Exception:  # the broker is down: the sweep sends them
        logger.warning("e-mails of %d notifications not sent (broker unreachable)", len(ids))
        Notification.objects.filter(pk__in=ids, email_status=EmailStatus.PENDING).update(
            email_queued_at=None
        )


def emails_sweep() -> int:
    """Send again the e-mails whose message was lost (the broker was down, a worker died): due
    and unsent, and not published within the last ``NOTIFICATIONS_EMAIL_REQUEUE_SECONDS``. Run
    by beat; returns how many were sent on."""
    now = timezone.now()
    stale = now - datetime.timedelta(seconds=settings.NOTIFICATIONS_EMAIL_REQUEUE_SECONDS)
    due = (
        Notification.objects.filter(
            email_status=EmailStatus.PENDING, email_next_attempt_at__lte=now
        )
        .filter(Q(email_queued_at__isnull=True) | Q(email_queued_at__lt=stale))
        .filter(Q(email_lease_until__isnull=True) | Q(email_lease_until__lt=now))
        .order_by("email_next_attempt_at")
    )
    ids = list(due.values_list("pk", flat=True)[:1000])
    if ids:
        with transaction.atomic():
            Notification.objects.filter(pk__in=ids).update(email_queued_at=now)
            emails_send_on_commit(notification_ids=ids)
    return len(ids)


# --- Read marks: a person's own list --------------------------------------------------------------
# A person's own reading is no change of anyone's access: no audit event.


def notification_read(*, notification: Notification, user: User) -> Notification:
    """Mark one of the person's notifications read (again: nothing changes)."""
    if notification.recipient_id != user.pk:
        raise PermissionError("not the person's notification")
    if notification.read_at is None:
        now = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.read_at = now
    return notification


def notifications_read_all(*, user: User) -> int:
    """Mark every unread notification of the person read; returns how many."""
    return Notification.objects.visible_to(user).unread().update(read_at=timezone.now())
