"""The checks every page goes through find what they are meant to find: a page with a fault
fails check_page with a message that says where to look."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.browser.helpers import check_page, inline_code, track

pytestmark = pytest.mark.integration

ORIGIN = "http://checks.tilgang.test"
GOOD = """<!DOCTYPE html>
<html lang="nb"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Prøve · Tilgang</title><link rel="stylesheet" href="/page.css"></head>
<body><header><p>Tilgang</p></header><main><h1>Prøve</h1>
<p>En side uten feil.</p><img src="/dot.png" alt="En prikk">{extra}</main></body></html>"""


@pytest.fixture
def serve(browser: Browser) -> Iterator[Callable[..., Page]]:
    """A page that loads the given HTML (and a stylesheet) from a made-up origin, so a check can
    be tried on a fault nobody would put in the portal."""
    context = browser.new_context(base_url=ORIGIN, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    track(page, ORIGIN)

    def show(html: str = GOOD, *, css: str = "", extra: str = "") -> Page:
        def answer(route: Route) -> None:
            path = route.request.url.removeprefix(ORIGIN)
            if path == "/page.css":
                route.fulfill(body=css, content_type="text/css")
            elif path == "/dot.png":
                route.fulfill(status=404)
            else:
                route.fulfill(body=html.replace("{extra}", extra), content_type="text/html")

        page.route(f"{ORIGIN}/**", answer)
        page.goto("/page")
        return page

    yield show
    context.close()


def test_a_page_without_faults_passes(serve: Callable[..., Page]) -> None:
    check_page(serve())


def test_an_accessibility_fault_fails_with_axes_rule_and_the_element(
    serve: Callable[..., Page],
) -> None:
    page = serve(extra='<input type="text" id="x"><img src="/dot.png">')

    with pytest.raises(AssertionError) as failure:
        check_page(page)

    message = str(failure.value)
    assert "axe-core finds 2 WCAG 2.1 A/AA violation(s)" in message
    assert "- image-alt (critical)" in message
    assert "- label (critical)" in message
    assert "#x" in message


def test_a_page_wider_than_375_px_fails_and_names_what_sticks_out(
    serve: Callable[..., Page],
) -> None:
    page = serve(extra='<div class="too-wide">wide</div>', css=".too-wide { width: 500px; }")

    with pytest.raises(AssertionError) as failure:
        check_page(page)

    assert "at 375 px is" in str(failure.value)
    assert '<div class="too-wide"> right edge' in str(failure.value)


def test_a_title_without_the_sites_name_fails(serve: Callable[..., Page]) -> None:
    page = serve(GOOD.replace("Prøve · Tilgang", "Prøve"))

    with pytest.raises(AssertionError, match="lacks ' · Tilgang'"):
        check_page(page)


def test_inline_code_in_the_served_html_fails_even_if_a_script_removed_it(
    serve: Callable[..., Page],
) -> None:
    page = serve(extra='<p id="p" style="color: red">rød</p>')
    page.evaluate("() => document.getElementById('p').removeAttribute('style')")

    with pytest.raises(AssertionError, match='style attribute on <p>: style="color: red"'):
        check_page(page)


@pytest.mark.parametrize(
    ("html", "found"),
    [
        ("<script>alert(1)</script>", "a <script> without src"),
        ('<script type="module">import "x"</script>', "a <script> without src"),
        ("<style>p { color: red }</style>", "a <style> element"),
        ('<p style="color: red">x</p>', "a style attribute on <p>"),
        ('<button onclick="go()">x</button>', "an event handler attribute on <button>: onclick"),
        ('<img src="x.png" alt="" onerror="go()">', "an event handler attribute on <img>: onerror"),
        ('<div hx-on:click="go()">x</div>', "an event handler attribute on <div>: hx-on:click"),
        ('<a href="javascript:go()">x</a>', "a javascript: URL on <a>"),
    ],
)
def test_each_kind_of_inline_code_is_found_with_its_line(html: str, found: str) -> None:
    findings = inline_code(f"<p>first line</p>\n{html}")

    assert len(findings) == 1, findings
    assert findings[0].startswith(f"line 2: {found}")


@pytest.mark.parametrize(
    "html",
    [
        '<script src="/static/js/tilgang.js" defer></script>',
        '<script id="data" type="application/json">{"a": 1}</script>',
        '<link rel="stylesheet" href="/static/css/tilgang.css">',
        '<div hx-get="/x" hx-trigger="every 1s" data-style="x">x</div>',
        '<a href="/javascript-guide/">x</a>',
    ],
)
def test_what_a_strict_policy_allows_is_not_found(html: str) -> None:
    assert inline_code(html) == []
