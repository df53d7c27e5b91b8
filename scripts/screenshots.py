#!/usr/bin/env python
"""Screenshots of the main pages of each role, in bokmål and English, at 1280 and 375 px wide:
``make screenshots`` writes them to docs/screenshots/<slug>-<language>-<width>.png. On a laptop
(1280 px) a shot is the whole page, down to DESKTOP_MAX_HEIGHT px; on a phone (375 px), the
first screen a person sees on opening the page. Each is a PNG of at most 256 colours (chosen by
median cut; a page has a few thousand, mostly the edges of letters), a third of Chromium's own
PNG's size, so the set weighs a few megabytes in the repository.

Runs from a fresh clone: everything lives in a temporary directory that is removed afterwards (a
SQLite database with ``seed_demo``'s demo and, so that the pages show something, the demo after
some weeks of use, scripts/demo_scene.py; development secrets; the provider's keys); the portal
(``runserver``) and the local OpenID provider listen on free loopback ports; Debian's Chromium
logs each person in through the provider's login page, as a person does.

    python scripts/screenshots.py [--output docs/screenshots] [--only SLUG ...]
        [--languages nb en] [--widths 1280 375]

The pages are the data below (SHOTS): add a page by adding a line.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from playwright.sync_api import Browser, Page, sync_playwright

if TYPE_CHECKING:  # the scene's module reads Django's models: imported once Django is set up
    from demo_scene import Scene  # scripts/demo_scene.py, beside this file

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
#: Below this width a shot is a phone's: its first screen, this high.
PHONE_WIDTH, PHONE_HEIGHT = 600, 812
#: A laptop's shot is the whole page down to here (the rest of a long list says nothing new).
LAPTOP_HEIGHT, DESKTOP_MAX_HEIGHT = 900, 2400
#: The colours of a PNG written (its palette).
COLOURS = 256
#: What a browser set to each language sends (the provider's pages follow Accept-Language; the
#: portal, its language cookie).
ACCEPT_LANGUAGE = {"nb": "nb-NO,nb;q=0.9,no;q=0.8,en;q=0.5", "en": "en-GB,en;q=0.9"}


def preview_order(page: Page, scene: Scene) -> None:
    """On the new order page: order two services of Trygghet AS's production client for Oslo,
    Bergen and Trondheim, and see what the rules decide for each before it is sent."""
    page.locator("select[name=client]").select_option(str(scene.client.pk))
    for item in ("episode-of-care.read", "observation.write"):
        page.locator(f"input[name=items][value='{item}']").check()
    for kommune in (scene.oslo, scene.bergen, scene.trondheim):
        page.locator(f"input[name=kommuner][value='{kommune.orgnr}']").check()
    page.locator("button[name=action][value=preview]").click()
    page.locator("form[action$='/orders/new/send/']").wait_for()


class Shot(NamedTuple):
    """One page to photograph.

    person: a demo person's e-mail (``seed_demo``), who logs in first; None for a visitor.
    page: a URL name (``orders:catalogue``; one that takes ``orgnr`` gets the person's
        organisation) or a path (``/services/``; ``{orgnr}`` is the person's organisation).
    slug: the file name's start, unique: docs/screenshots/<slug>-<language>-<width>.png.
    args: the URL name's other arguments, each an attribute of the scene (scripts/demo_scene.py):
        ``(("client_id", "client.pk"),)``.
    then: what the person does on the page before it is taken, given the page and the scene.
    """

    person: str | None
    page: str
    slug: str
    args: tuple[tuple[str, str], ...] = ()
    then: Callable[[Page, Scene], None] | None = None


KOMMUNE_ADMIN = "admin@oslo.example"
VENDOR_ADMIN = "admin@trygghet.example"
NHN_OPERATOR = "drift@nhn.example"

SHOTS: list[Shot] = [
    Shot(None, "tenants:home", "start"),
    # The portal's login leads to the provider's login page, with the demo people.
    Shot(None, "oidc_authentication_init", "login"),
    Shot(KOMMUNE_ADMIN, "tenants:home", "my-organisations"),
    Shot(KOMMUNE_ADMIN, "orders:dashboard", "kommune-dashboard"),
    Shot(KOMMUNE_ADMIN, "orders:instruction", "kommune-instruction"),
    Shot(KOMMUNE_ADMIN, "orders:delegations", "kommune-delegations"),
    Shot(KOMMUNE_ADMIN, "orders:approvals", "kommune-approvals"),
    Shot(KOMMUNE_ADMIN, "orders:access", "kommune-access"),
    Shot(KOMMUNE_ADMIN, "recertification:page", "kommune-recertification"),
    Shot(KOMMUNE_ADMIN, "orders:catalogue", "catalogue"),
    Shot(VENDOR_ADMIN, "orders:dashboard", "vendor-dashboard"),
    Shot(VENDOR_ADMIN, "orders:clients", "vendor-clients"),
    Shot(VENDOR_ADMIN, "orders:client", "vendor-client", args=(("client_id", "client.pk"),)),
    Shot(VENDOR_ADMIN, "orders:order_new", "vendor-order-preview", then=preview_order),
    Shot(VENDOR_ADMIN, "orders:orders", "vendor-orders"),
    Shot(VENDOR_ADMIN, "orders:order", "vendor-order", args=(("pk", "order.pk"),)),
    Shot(NHN_OPERATOR, "orders:dashboard", "nhn-operator-dashboard"),
    Shot(NHN_OPERATOR, "orders:matrix", "nhn-matrix"),
    Shot(NHN_OPERATOR, "tenants:organisations", "nhn-organisations"),
    Shot(NHN_OPERATOR, "provisioning:jobs", "nhn-jobs"),
    Shot(NHN_OPERATOR, "tenants:audit", "nhn-audit"),
    Shot(NHN_OPERATOR, "orders:vendors", "nhn-vendors"),
    Shot("revisor@nhn.example", "orders:dashboard", "nhn-auditor-dashboard"),
    # Oversight (issue 13): who had access when, who called what, the country, the EPJ switch.
    Shot(KOMMUNE_ADMIN, "orders:access_history", "kommune-access-history"),
    Shot(KOMMUNE_ADMIN, "provisioning:data_access", "kommune-data-access"),
    Shot(KOMMUNE_ADMIN, "tenants:epj", "kommune-epj"),
    Shot(VENDOR_ADMIN, "notifications:list", "vendor-notifications"),
    Shot("revisor@nhn.example", "orders:access_history", "nhn-access-history"),
    Shot("revisor@nhn.example", "provisioning:national", "nhn-national"),
    Shot("revisor@nhn.example", "orders:epj_register", "nhn-epj-register"),
]


# --- The pages ---------------------------------------------------------------------------------


def organisation_of(person: str) -> str | None:
    """The orgnr of the person's (first) organisation in the demo."""
    from tenants.models import Membership

    membership = (
        Membership.objects.filter(email=person).select_related("organisation").order_by("pk")
    ).first()
    return membership.organisation.orgnr if membership is not None else None


def scene_value(scene: Scene | None, path: str) -> Any:
    """An attribute of the scene by its dotted path (``client.pk``)."""
    if scene is None:
        raise ValueError(f"{path} is an attribute of the scene: build it first")
    value: Any = scene
    for name in path.split("."):
        value = getattr(value, name)
    return value


def path_of(shot: Shot, scene: Scene | None = None) -> str:
    """The shot's page as a path of the portal."""
    from django.urls import NoReverseMatch, reverse

    orgnr = organisation_of(shot.person) if shot.person else None
    if shot.page.startswith("/"):
        return shot.page.replace("{orgnr}", orgnr or "")
    kwargs = {name: scene_value(scene, path) for name, path in shot.args}
    try:
        return reverse(shot.page, kwargs=kwargs)
    except NoReverseMatch:
        if orgnr is None:
            raise
        return reverse(shot.page, kwargs={"orgnr": orgnr, **kwargs})


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
    scene: Scene | None = None,
) -> list[Path]:
    """Photograph ``shots`` on the portal at ``portal_url``; return the files written."""
    from django.conf import settings

    output.mkdir(parents=True, exist_ok=True)
    written = []
    paths = {shot.slug: path_of(shot, scene) for shot in shots}
    tool = browser.new_page()  # a blank page, where each PNG's palette is chosen
    for person, theirs in by_person(shots).items():
        for language in languages:
            context = browser.new_context(
                viewport={"width": max(widths), "height": LAPTOP_HEIGHT},
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
                    page.set_viewport_size({"width": max(widths), "height": LAPTOP_HEIGHT})
                    page.goto(f"{portal_url}{paths[shot.slug]}")
                    page.wait_for_load_state("load")
                    if shot.then is not None:
                        if scene is None:
                            raise ValueError(f"{shot.slug} acts on the scene: build it first")
                        shot.then(page, scene)
                    for width in widths:
                        file = output / f"{shot.slug}-{language}-{width}.png"
                        photograph(page, width, file, tool)
                        written.append(file)
            finally:
                context.close()
    tool.close()
    return written


def photograph(page: Page, width: int, file: Path, tool: Page) -> None:
    """The page at ``width``: a phone's first screen, or a laptop's whole page (cut at
    DESKTOP_MAX_HEIGHT px), written with a palette (``tool`` chooses it)."""
    if width < PHONE_WIDTH:
        page.set_viewport_size({"width": width, "height": PHONE_HEIGHT})
        shot = page.screenshot(animations="disabled", caret="hide")
    else:
        page.set_viewport_size({"width": width, "height": LAPTOP_HEIGHT})
        height = page.evaluate("() => document.documentElement.scrollHeight")
        shot = page.screenshot(
            full_page=True,
            clip={"x": 0, "y": 0, "width": width, "height": min(height, DESKTOP_MAX_HEIGHT)},
            animations="disabled",
            caret="hide",
        )
    file.write_bytes(with_palette(tool, shot))


#: In Chromium: decode a PNG, choose at most ``colours`` colours by median cut (each box of
#: colours split at its weighted median along its widest channel; each colour of the image
#: kept when there are few enough), and return the palette and each row's indices.
QUANTIZE = """async ({png, colours}) => {
  const bytes = Uint8Array.from(atob(png), c => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], {type: "image/png"}));
  const {width, height} = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  const rgba = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const rgb = i => (rgba[i] << 16) | (rgba[i + 1] << 8) | rgba[i + 2];
  const counts = new Map();
  for (let i = 0; i < rgba.length; i += 4) counts.set(rgb(i), (counts.get(rgb(i)) || 0) + 1);
  // A colour: [red, green, blue, pixels].
  let boxes = [[...counts].map(([c, n]) => [c >> 16, (c >> 8) & 255, c & 255, n])];
  const pixels = box => box.reduce((sum, c) => sum + c[3], 0);
  const spread = (box, k) => {
    let low = 255, high = 0;
    for (const c of box) { low = Math.min(low, c[k]); high = Math.max(high, c[k]); }
    return high - low;
  };
  while (boxes.length < colours) {
    let split = -1, channel = 0, widest = 0;
    boxes.forEach((box, b) => {
      if (box.length < 2) return;
      const weight = Math.sqrt(pixels(box));
      for (let k = 0; k < 3; k++) {
        const score = spread(box, k) * weight;
        if (score > widest) { widest = score; split = b; channel = k; }
      }
    });
    if (split < 0) break;  // every colour has a box of its own
    const box = boxes[split].sort((a, b) => a[channel] - b[channel]);
    const half = pixels(box) / 2;
    let cut = 1;
    for (let seen = box[0][3]; cut < box.length - 1 && seen < half; cut++) seen += box[cut][3];
    boxes.splice(split, 1, box.slice(0, cut), box.slice(cut));
  }
  const palette = boxes.map(box => [0, 1, 2].map(
    k => Math.round(box.reduce((sum, c) => sum + c[k] * c[3], 0) / pixels(box))));
  const index = new Map();
  boxes.forEach((box, b) => box.forEach(c => index.set((c[0] << 16) | (c[1] << 8) | c[2], b)));
  // Each row: filter type 0 (none), then the row's indices.
  const rows = new Uint8Array((width + 1) * height);
  for (let y = 0, i = 0, o = 0; y < height; y++) {
    rows[o++] = 0;
    for (let x = 0; x < width; x++, i += 4) rows[o++] = index.get(rgb(i));
  }
  let text = "";
  for (let i = 0; i < rows.length; i += 32768) {
    text += String.fromCharCode(...rows.subarray(i, i + 32768));
  }
  return {width, height, palette, rows: btoa(text)};
}"""


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_palette(tool: Page, png: bytes) -> bytes:
    """``png`` as an 8-bit PNG with a palette of at most COLOURS colours, chosen in ``tool``
    (a blank page of the browser)."""
    found = tool.evaluate(QUANTIZE, {"png": base64.b64encode(png).decode(), "colours": COLOURS})
    header = struct.pack(">IIBBBBB", found["width"], found["height"], 8, 3, 0, 0, 0)
    palette = bytes(value for colour in found["palette"] for value in colour)
    rows = zlib.compress(base64.b64decode(found["rows"]), 9)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"PLTE", palette),
            _chunk(b"IDAT", rows),
            _chunk(b"IEND", b""),
        )
    )


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
        import demo_scene  # scripts/demo_scene.py, beside this file

        scene = demo_scene.build()
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
                scene=scene,
            )
            browser.close()
    for file in written:
        print(file.relative_to(PROJECT_DIR) if file.is_relative_to(PROJECT_DIR) else file)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT_DIR))
    sys.exit(main())
