#!/usr/bin/env python
"""Screenshots of the main pages of each role, in bokmål and English, at 1280 and 375 px wide
(the full page): ``make screenshots`` writes them to docs/screenshots/<slug>-<language>-<width>.png.

Runs from a fresh clone: everything lives in a temporary directory that is removed afterwards (a
SQLite database with ``seed_demo``'s demo, development secrets, the provider's keys); the portal
(``runserver``) and the local OpenID provider listen on free loopback ports; Debian's Chromium
logs each person in through the provider's login page, as a person does.

    python scripts/screenshots.py [--output docs/screenshots] [--only SLUG ...]
        [--languages nb en] [--widths 1280 375]

The pages are the data below (SHOTS): add a page by adding a line.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NamedTuple

from playwright.sync_api import Browser, Page, sync_playwright

PROJECT_DIR = Path(__file__).resolve().parent.parent
NODE = PROJECT_DIR / "node_modules" / ".bin" / "node"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LANGUAGES = ("nb", "en")
WIDTHS = (1280, 375)
#: What a browser set to each language sends (the provider's pages follow Accept-Language; the
#: portal, its language cookie).
ACCEPT_LANGUAGE = {"nb": "nb-NO,nb;q=0.9,no;q=0.8,en;q=0.5", "en": "en-GB,en;q=0.9"}


class Shot(NamedTuple):
    """One page to photograph.

    person: a demo person's e-mail (``seed_demo``), who logs in first; None for a visitor.
    page: a URL name (``orders:catalogue``; one that takes ``orgnr`` gets the person's
        organisation) or a path (``/services/``; ``{orgnr}`` is the person's organisation).
    slug: the file name's start, unique: docs/screenshots/<slug>-<language>-<width>.png.
    """

    person: str | None
    page: str
    slug: str


SHOTS: list[Shot] = [
    Shot(None, "tenants:home", "start"),
    # The portal's login leads to the provider's login page, with the demo people.
    Shot(None, "oidc_authentication_init", "login"),
    Shot("admin@oslo.example", "tenants:home", "my-organisations"),
    Shot("admin@oslo.example", "orders:dashboard", "kommune-dashboard"),
    Shot("admin@oslo.example", "orders:catalogue", "catalogue"),
    Shot("admin@trygghet.example", "orders:dashboard", "vendor-dashboard"),
    Shot("drift@nhn.example", "orders:dashboard", "nhn-operator-dashboard"),
    Shot("revisor@nhn.example", "orders:dashboard", "nhn-auditor-dashboard"),
]


# --- The pages ---------------------------------------------------------------------------------


def organisation_of(person: str) -> str | None:
    """The orgnr of the person's (first) organisation in the demo."""
    from tenants.models import Membership

    membership = (
        Membership.objects.filter(email=person).select_related("organisation").order_by("pk")
    ).first()
    return membership.organisation.orgnr if membership is not None else None


def path_of(shot: Shot) -> str:
    """The shot's page as a path of the portal."""
    from django.urls import NoReverseMatch, reverse

    orgnr = organisation_of(shot.person) if shot.person else None
    if shot.page.startswith("/"):
        return shot.page.replace("{orgnr}", orgnr or "")
    try:
        return reverse(shot.page)
    except NoReverseMatch:
        if orgnr is None:
            raise
        return reverse(shot.page, kwargs={"orgnr": orgnr})


def by_person(shots: Iterable[Shot]) -> dict[str | None, list[Shot]]:
    """The shots grouped by who takes them, in the order given."""
    groups: dict[str | None, list[Shot]] = {}
    for shot in shots:
        groups.setdefault(shot.person, []).append(shot)
    return groups


def login(page: Page, portal_url: str, person: str) -> None:
    """Through the provider's login page: click the demo person."""
    page.goto(f"{portal_url}/oidc/authenticate/")
    page.get_by_role("button", name=re.compile(rf"^{re.escape(person)}(\s|$)")).click()
    page.wait_for_url(lambda url: url.startswith(portal_url) and "/oidc/" not in url)


def take(
    browser: Browser,
    portal_url: str,
    shots: Sequence[Shot],
    output: Path,
    *,
    languages: Sequence[str] = LANGUAGES,
    widths: Sequence[int] = WIDTHS,
) -> list[Path]:
    """Photograph ``shots`` on the portal at ``portal_url``; return the files written."""
    from django.conf import settings

    output.mkdir(parents=True, exist_ok=True)
    written = []
    paths = {shot.slug: path_of(shot) for shot in shots}
    for person, theirs in by_person(shots).items():
        for language in languages:
            context = browser.new_context(
                viewport={"width": max(widths), "height": 900},
                extra_http_headers={"Accept-Language": ACCEPT_LANGUAGE[language]},
            )
            context.add_cookies(
                [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": portal_url}]
            )
            try:
                page = context.new_page()
                if person is not None:
                    login(page, portal_url, person)
                for shot in theirs:
                    page.goto(f"{portal_url}{paths[shot.slug]}")
                    page.wait_for_load_state("load")
                    for width in widths:
                        page.set_viewport_size({"width": width, "height": 900})
                        file = output / f"{shot.slug}-{language}-{width}.png"
                        page.screenshot(
                            path=file, full_page=True, animations="disabled", caret="hide"
                        )
                        written.append(file)
            finally:
                context.close()
    return written


# --- The throwaway portal and provider ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start within {timeout} s:\n{log.read_text()[-3000:]}")


@contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own programs, fixed arguments
            args, cwd=PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)


def environment(tmp: Path, web_port: int, provider_port: int) -> dict[str, str]:
    """Development settings with everything in ``tmp``, whatever the caller's environment
    points at (its database and broker stay untouched)."""
    portal_url = f"http://127.0.0.1:{web_port}"
    issuer = f"http://127.0.0.1:{provider_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OIDC_", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "1",
            "TILGANG_VAR_DIR": str(tmp),
            "DATABASE_URL": f"sqlite:///{tmp / 'tilgang.sqlite3'}",
            "CELERY_BROKER_URL": "filesystem://",
            "CELERY_RESULT_BACKEND": "",
            "PORTAL_URL": portal_url,
            "PORTAL_API_AUDIENCE": f"{portal_url}/api/",
            "OIDC_OP_ISSUER": issuer,
            "OIDC_ISSUER": issuer,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=PROJECT_DIR / "docs" / "screenshots")
    parser.add_argument("--only", nargs="+", metavar="SLUG", help="only these shots")
    parser.add_argument("--languages", nargs="+", choices=LANGUAGES, default=list(LANGUAGES))
    parser.add_argument("--widths", nargs="+", type=int, default=list(WIDTHS))
    args = parser.parse_args(argv)

    shots = [shot for shot in SHOTS if not args.only or shot.slug in args.only]
    if args.only and len(shots) != len(set(args.only)):
        known = ", ".join(shot.slug for shot in SHOTS)
        parser.error(f"unknown shot in {args.only}; the shots are: {known}")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: run `make bootstrap` (it installs chromium)")

    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="tilgang-screenshots-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        web_port, provider_port = free_port(), free_port()
        env = environment(tmp, web_port, provider_port)
        os.environ.clear()
        os.environ.update(env)

        import django
        from django.core.management import call_command
        from django.db import connections

        django.setup()
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo", stdout=io.StringIO())
        call_command("write_provider_scopes", stdout=io.StringIO())
        connections.close_all()

        provider_log, web_log = tmp / "provider.log", tmp / "web.log"
        stack.enter_context(running([str(NODE), "oidc/provider.mjs"], env, provider_log))
        web = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{web_port}"]
        stack.enter_context(running(web, env, web_log))
        wait_for_port(provider_port, "the OpenID provider", provider_log)
        wait_for_port(web_port, "the portal", web_log)

        # Playwright's synchronous API runs an event loop in this thread; the ORM (reading the
        # demo's organisations) is still called synchronously, between browser calls.
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            written = take(
                browser,
                env["PORTAL_URL"],
                shots,
                args.output,
                languages=args.languages,
                widths=args.widths,
            )
            browser.close()
    for file in written:
        print(file.relative_to(PROJECT_DIR) if file.is_relative_to(PROJECT_DIR) else file)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT_DIR))
    sys.exit(main())
