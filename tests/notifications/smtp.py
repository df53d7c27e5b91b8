"""A real SMTP server for the tests (aiosmtpd on a free loopback port, in a thread of the test
process) that keeps what it receives, and a real Celery worker of the ``notifications`` queue
(the Procfile's ``mailer``) sending to it."""

from __future__ import annotations

import email
import email.policy
import logging
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings

from tests.components import VENV_BIN, free_port, port_open, process, wait_until
from tests.provisioning.stack import database_url, wait_for


@dataclass(frozen=True)
class Received:
    """One message as the server received it: the envelope's recipients and the message."""

    to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        # Python folds a long encoded subject onto a continuation line ("Subject: \n =?utf-8?"):
        # unfolded, the value starts with the fold's space, which mail programs do not show.
        return str(self.message["Subject"]).strip()

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.server.lock:
            self.server.messages.append(Received(list(envelope.rcpt_tos), message))
        return "250 OK"


@dataclass
class SMTPServer:
    port: int = field(default_factory=free_port)
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        """Down: connections to its port are refused until ``start``."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        wait_until(lambda: not port_open(self.port), timeout=10, what="SMTP server stopped")

    def received(self, to: str | None = None) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if to is None or to in m.to]

    def wait_for(
        self, check: Callable[[list[Received]], Any], *, timeout: float = 30, what: str
    ) -> Any:
        """Until ``check`` of what arrived is truthy; its value."""
        return wait_for(lambda: check(self.received()), timeout=timeout, what=what)

    def message_to(self, address: str, *, timeout: float = 30) -> Received:
        """The one message to ``address``, once it arrived."""
        found: list[Received] = wait_for(
            lambda: self.received(address), timeout=timeout, what=f"an e-mail to {address}"
        )
        assert len(found) == 1, [m.subject for m in found]
        return found[0]


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    server = SMTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def mailer_env(smtp: SMTPServer, broker_url: str | None = None) -> dict[str, str]:
    """The environment of a mailer worker sending to ``smtp`` (retries within a second)."""
    return {
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url or settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": "",
        "TILGANG_VAR_DIR": str(settings.VAR_DIR),
        "PORTAL_URL": settings.PORTAL_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "EMAIL_TIMEOUT": "5",
        "NOTIFICATIONS_EMAIL_BACKOFF_MAX_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }


def notifications_purge() -> None:
    """Empty the shared broker's notifications queue: messages other tests left must not reach
    this test's mailer."""
    from portal import celery_app

    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(settings.NOTIFICATIONS_QUEUE)


@dataclass
class Mailer:
    """Starts mailer workers (``celery worker -Q notifications``) for the test."""

    tmp: Path
    stack: ExitStack
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"mailer-{len(self.workers)}.log"
        args = [str(VENV_BIN / "celery"), "-A", "portal", "worker", "--loglevel=INFO"]
        args += ["--concurrency=1", f"--hostname=mailer{len(self.workers)}@%h"]
        args += ["--without-gossip", "-Q", settings.NOTIFICATIONS_QUEUE]
        worker = self.stack.enter_context(process(args, log=log, env=env))
        wait_until(lambda: "ready." in log.read_text(), timeout=60, what="mailer", log=log)
        self.workers.append(worker)
        return worker


@pytest.fixture
def mailer_process(tmp_path: Path) -> Iterator[Mailer]:
    with ExitStack() as stack:
        yield Mailer(tmp=tmp_path, stack=stack)


@pytest.fixture
def mailer(mailer_process: Mailer, smtp_server: SMTPServer) -> SMTPServer:
    """A mailer worker on the shared broker, sending to the test's SMTP server (returned)."""
    notifications_purge()
    mailer_process.start(mailer_env(smtp_server))
    return smtp_server
