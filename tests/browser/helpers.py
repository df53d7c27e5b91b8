"""What browser tests do with a page: log in through the provider, choose the language, and check
a page against the issue's rules (axe-core WCAG 2.1 A/AA, no sideways scrolling at 375 and 1280
px, no inline script or style, the title).

Elements are found by role and accessible name, as a screen reader finds them; nothing waits by
sleeping (Playwright's expect() and auto-waiting do).
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Iterable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from playwright.sync_api import ConsoleMessage, Page, Response, expect

from tests.components import PROJECT_DIR

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
#: Each action and expect() waits at most this long (provisioning waits pass their own).
DEFAULT_TIMEOUT_MS = 15_000
AXE = PROJECT_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = (375, 1280)
TITLE_SUFFIX = " · Tilgang"
LANGUAGES = ("nb", "en")
#: What a browser set to each language sends. The provider's pages follow the ``ui_locales``
#: the portal's login passes on first, and Accept-Language where a request carries none.
LANGUAGE_HEADERS = {
    "nb": {"Accept-Language": "nb-NO,nb;q=0.9,no;q=0.8,en;q=0.5"},
    "en": {"Accept-Language": "en-GB,en;q=0.9"},
}
#: The provider's login page, in either language.
EMAIL_LABEL = re.compile(r"^(E-postadresse|E-mail address)$")
SUBMIT = re.compile(r"^(Logg inn|Log in)$")


# --- Logging in ------------------------------------------------------------------------------


def person_button(page: Page, email: str) -> Any:
    """The demo person's one-click button on the provider's login page (its name starts with the
    address, then the organisation and the role, one line each)."""
    return page.get_by_role("button", name=re.compile(rf"^{re.escape(email)}(\s|$)"))


def provider_login(page: Page, email: str) -> None:
    """On the provider's login page: click the person if the page lists them, else type the
    address (any password). Also answers the fresh login the portal asks for before a
    signature (``prompt=login``)."""
    expect(page.get_by_label(EMAIL_LABEL)).to_be_visible()
    person = person_button(page, email)
    if person.count():
        person.click()
    else:
        page.get_by_label(EMAIL_LABEL).fill(email)
        page.get_by_role("button", name=SUBMIT).click()


def login(page: Page, email: str, *, next: str | None = None) -> None:
    """Log in as ``email`` through the real provider's login page and land back in the portal
    (on ``next``, or the start page). A page whose context is already logged in at the provider
    comes straight back without the login page."""
    portal = base_url(page)
    query = f"?{urlencode({'next': next})}" if next else ""
    page.goto(f"/oidc/authenticate/{query}")
    page.wait_for_url(
        lambda url: "/interaction/" in url or (url.startswith(portal) and "/oidc/" not in url)
    )
    if "/interaction/" in page.url:
        provider_login(page, email)
    page.wait_for_url(lambda url: url.startswith(portal) and "/oidc/" not in url)
    if next:
        expect(page).to_have_url(f"{portal}{next}")


def base_url(page: Page) -> str:
    """The live portal the page was opened on (``track``)."""
    return _portals[page]


def set_language(page: Page, language: str) -> None:
    """Choose the language for the page's next loads: the portal's language cookie (as its
    language menu sets it, and the portal's login passes on to the provider as ``ui_locales``)
    and the browser's Accept-Language (which the provider falls back on without one)."""
    assert language in LANGUAGES, language
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base_url(page)}]
    )
    page.context.set_extra_http_headers(LANGUAGE_HEADERS[language])


# --- Checking a page -------------------------------------------------------------------------

#: The HTML each tracked page was served: its document, then any fragments (htmx) it fetched.
_served: weakref.WeakKeyDictionary[Page, list[Response]] = weakref.WeakKeyDictionary()
#: The portal each tracked page belongs to.
_portals: weakref.WeakKeyDictionary[Page, str] = weakref.WeakKeyDictionary()


def track(page: Page, portal_url: str) -> None:
    """Remember the portal ``page`` works on, and keep its HTML responses so check_page can read
    what the server sent (the DOM is not: a script may have changed it)."""
    _portals[page] = portal_url.rstrip("/")
    responses: list[Response] = []
    _served[page] = responses

    def seen(response: Response) -> None:
        request = response.request
        html = "text/html" in response.headers.get("content-type", "")
        if not html or 300 <= response.status < 400:
            return
        if request.resource_type == "document" and request.frame == page.main_frame:
            responses[:] = [response]  # a new document: the old one's fragments are gone
        elif request.resource_type in ("xhr", "fetch"):
            responses.append(response)

    page.on("response", seen)


#: Reports each violation of a page's Content-Security-Policy to the console, where
#: ``record_csp_violations`` reads it: Chromium's own console line says less (and not for a
#: report-only policy). Added to every document through the DevTools protocol, not a <script>.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.warn('csp-violation: ' + JSON.stringify({
    directive: event.effectiveDirective, blocked: event.blockedURI,
    source: event.sourceFile, line: event.lineNumber, sample: event.sample,
    document: event.documentURI,
  }));
});
"""
_violations: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()


def record_csp_violations(page: Page) -> None:
    """From now on, keep what the page's Content-Security-Policy blocks (on the portal's pages
    and the provider's alike) and the page's uncaught script errors: ``csp_violations`` reads
    them."""
    found: list[str] = []
    _violations[page] = found
    page.add_init_script(_CSP_LISTENER)

    def console(message: ConsoleMessage) -> None:
        text = message.text
        if text.startswith("csp-violation: ") or "Content Security Policy" in text:
            found.append(f"{page.url}: {text}")

    page.on("console", console)
    page.on("pageerror", lambda error: found.append(f"{page.url}: script error: {error}"))


def csp_violations(page: Page) -> list[str]:
    """What the page's policy blocked, and its script errors, since ``record_csp_violations``."""
    return list(_violations.get(page, []))


def forget_csp_violations(page: Page) -> None:
    """For a test that provokes violations on purpose (to show they are seen)."""
    _violations.get(page, []).clear()


class _InlineCode(HTMLParser):
    """Finds what a strict Content-Security-Policy (no 'unsafe-inline') would block."""

    SCRIPT_TYPES = {"", "text/javascript", "application/javascript", "module"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def _found(self, what: str) -> None:
        self.found.append(f"line {self.getpos()[0]}: {what}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "style":
            self._found("a <style> element")
        if (
            tag == "script"
            and "src" not in names
            and names.get("type", "").strip().lower() in self.SCRIPT_TYPES
        ):
            self._found("a <script> without src")
        for name, value in names.items():
            if name == "style":
                self._found(f'a style attribute on <{tag}>: style="{value}"')
            elif name.startswith(("on", "hx-on")):
                self._found(f"an event handler attribute on <{tag}>: {name}")
            elif name in ("href", "src", "action") and value.strip().lower().startswith(
                "javascript:"
            ):
                self._found(f"a javascript: URL on <{tag}>")

    handle_startendtag = handle_starttag


def inline_code(html: str) -> list[str]:
    """Inline script and style in ``html``: <script> without src, <style>, style=, on*=
    (and htmx's hx-on*, which evaluates its value), javascript: URLs."""
    parser = _InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


def served_html(page: Page) -> list[tuple[str, str]]:
    """(url, HTML) of what the server sent for the page's current document and the fragments
    it fetched since the last check; a page not tracked is fetched again."""
    responses = _served.get(page)
    if not responses or responses[0].url.split("#")[0] != page.url.split("#")[0]:
        return [(page.url, page.request.get(page.url).text())]
    served = [(response.url, response.text()) for response in responses]
    del responses[1:]  # fragments are checked once
    return served


@functools.cache
def _axe_source() -> str:
    if not AXE.exists():
        raise AssertionError(f"{AXE} is missing: run `make test`, which installs the npm packages")
    return AXE.read_text()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A and AA violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol, not a <script>: the page's CSP stays strict.
        page.evaluate(f"() => {{ {_axe_source()}\n}}")
    result: dict[str, Any] = page.evaluate(
        """tags => axe.run(document, {
            runOnly: {type: 'tag', values: tags}, resultTypes: ['violations'],
        })""",
        AXE_TAGS,
    )
    return list(result["violations"])


def describe_violations(violations: Iterable[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation.get('impact') or 'no impact'}): {violation['help']}"
        )
        lines.append(f"  {violation['helpUrl']}")
        for node in violation["nodes"][:10]:
            target = " ".join(str(part) for part in node.get("target", []))
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"  * {target}: {summary}")
            lines.append(f"    {node.get('html', '')[:200]}")
    return "\n".join(lines)


def check_page(page: Page, *, widths: Iterable[int] = WIDTHS) -> None:
    """The rules every page holds to, on the page as it is now: the title ends " · Tilgang";
    the served HTML has no inline script or style; at each width (375 and 1280 px) the document
    is no wider than the window and axe-core finds no WCAG 2.1 A/AA violation."""
    title = page.title()
    assert title.endswith(TITLE_SUFFIX), f"the title {title!r} of {page.url} lacks {TITLE_SUFFIX!r}"
    assert title.removesuffix(TITLE_SUFFIX).strip(), f"the title of {page.url} names no page"
    for url, html in served_html(page):
        found = inline_code(html)
        assert not found, f"inline script or style in {url}:\n" + "\n".join(found)

    original = page.viewport_size
    try:
        for width in widths:
            page.set_viewport_size({"width": width, "height": 800})
            scroll_width, window_width = page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert scroll_width <= window_width, (
                f"{page.url} at {width} px is {scroll_width} px wide: the page scrolls sideways"
                f"{_widest(page)}"
            )
            violations = axe_violations(page)
            assert not violations, (
                f"axe-core finds {len(violations)} WCAG 2.1 A/AA violation(s) on {page.url} "
                f"at {width} px:\n{describe_violations(violations)}"
            )
    finally:
        if original is not None:
            page.set_viewport_size(original)


def _widest(page: Page) -> str:
    """The elements that stick out to the right or overflow their box, to say where to look."""
    culprits: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
                         || (e.scrollWidth > e.clientWidth + 1
                             && getComputedStyle(e).overflowX === 'visible'))
            .slice(0, 8)
            .map(e => `<${e.tagName.toLowerCase()} class="${e.className}">`
                 + ` right edge ${Math.round(e.getBoundingClientRect().right)} px,`
                 + ` content ${e.scrollWidth} px wide`)"""
    )
    return "".join(f"\n  {culprit}" for culprit in culprits)


def check_in_both_languages(page: Page, url: str) -> None:
    """Load ``url`` in bokmål, then in English; each time the page is in that language and holds
    to check_page. The language stays English afterwards."""
    for language in LANGUAGES:
        set_language(page, language)
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("lang", language)
        check_page(page)
