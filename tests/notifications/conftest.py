from __future__ import annotations

from tests.notifications.smtp import (  # noqa: F401 - fixtures
    mailer,
    mailer_process,
    smtp_server,
)
