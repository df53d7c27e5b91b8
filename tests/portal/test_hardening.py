"""Hardening (README, "Hardening"): the security headers and cookies under production settings,
the Content-Security-Policy on every page, no inline script or style in any template, and the
API's throttles per person and per automation client."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from portal.security import provider_origins
from tenants.models import Organisation, Product
from tests.browser.helpers import inline_code
from tests.components import PROJECT_DIR, VENV_BIN
from tests.portal.test_settings import PRODUCTION_LIKE

#: The policy every response carries, directive by directive (portal/settings.py).
EXPECTED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


def policy(header: str) -> dict[str, str]:
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in directives}


def expected_policy() -> dict[str, str]:
    return {**EXPECTED_CSP, "form-action": " ".join(["'self'", *provider_origins()])}


# --- Production settings: headers and cookies --------------------------------------------------

PROBE = """
import json
from django.conf import settings
from django.test import Client

client = Client(HTTP_HOST="tilgang.nhn.example")
answers = {}
for path in ("/", "/oidc/authenticate/"):
    response = client.get(path, secure=True)
    answers[path] = {
        "status": response.status_code,
        "headers": dict(response.headers),
        "cookies": {
            name: {
                "secure": bool(morsel["secure"]),
                "httponly": bool(morsel["httponly"]),
                "samesite": morsel["samesite"],
                "max-age": morsel["max-age"],
            }
            for name, morsel in response.cookies.items()
        },
    }
answers["plain_http"] = client.get("/", secure=False).status_code
answers["settings"] = {
    "idle": settings.TILGANG_SESSION_IDLE_SECONDS,
    "max": settings.TILGANG_SESSION_MAX_SECONDS,
    "cookie_age": settings.SESSION_COOKIE_AGE,
    "throttle_cache": settings.CACHES["default"]["BACKEND"],
}
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def production(django_db_setup: Any, django_db_blocker: Any) -> dict[str, Any]:
    """What the portal answers under production settings (DJANGO_DEBUG=0, secrets given), in a
    process of its own on the test database: the front page and the start of a login."""
    database = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.fail(f"needs PostgreSQL, not {connection.vendor}: `make test` runs the suite on it")
    url = (
        f"postgresql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_"))}
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "shell", "-c", PROBE],
        cwd=PROJECT_DIR,
        env={
            **clean,
            **PRODUCTION_LIKE,
            "DATABASE_URL": url,
            "TILGANG_VAR_DIR": str(Path(settings.VAR_DIR)),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answers


def test_production_sends_the_security_headers(production: dict[str, Any]) -> None:
    headers = production["/"]["headers"]
    assert production["/"]["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert policy(headers["Content-Security-Policy"]) == {
        **EXPECTED_CSP,
        "form-action": "'self' https://login.nhn.example",
    }


def test_production_redirects_plain_http_to_https(production: dict[str, Any]) -> None:
    assert production["plain_http"] == 301


def test_production_cookies_are_secure_and_the_session_limited(
    production: dict[str, Any],
) -> None:
    csrf = production["/"]["cookies"]["csrftoken"]
    session = production["/oidc/authenticate/"]["cookies"]["sessionid"]
    assert production["/oidc/authenticate/"]["status"] == 302  # to the provider
    assert session == {"secure": True, "httponly": True, "samesite": "Lax", "max-age": 43200}
    assert csrf["secure"] is True
    assert csrf["samesite"] == "Lax"
    # An absolute lifetime (the cookie's Max-Age, tenants/sessions.py) and an idle one.
    assert production["settings"]["max"] == production["settings"]["cookie_age"] == 43200
    assert production["settings"]["idle"] == 1800
    # The throttles count in Redis, shared by every web process.
    assert production["settings"]["throttle_cache"].endswith("RedisCache")


# --- The Content-Security-Policy on every page ------------------------------------------------


def _pages() -> list[tuple[str, list[str]]]:
    """(route, its parameter names) of every HTML page: every route outside the API, the
    login's and the probes."""
    found: list[tuple[str, list[str]]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                if route.startswith(("api/", "oidc/", "healthz", "readyz")):
                    continue
                found.append((route, list(pattern.pattern.converters)))

    walk(get_resolver().url_patterns, "")
    return found


@pytest.mark.django_db
def test_every_page_carries_exactly_the_policy(world: Any, people: dict[str, Any]) -> None:
    """Each page, as the person who may see it (its organisation's admin or NHN's operator),
    and anonymous: the response, whatever its status, carries the whole policy."""
    nhn = Organisation.objects.get(kind=Organisation.Kind.OPERATOR)
    as_person = {
        world.kommune.orgnr: people["kommune_admin"],
        world.vendor.orgnr: people["vendor_admin"],
        nhn.orgnr: people["nhn_operator"],
    }
    checked = 0
    for route, parameters in _pages():
        for orgnr, person in as_person.items() if "orgnr" in parameters else [("", None)]:
            path = "/" + route
            for name in parameters:
                value = orgnr if name == "orgnr" else "1"
                path = path.replace(f"<{name}>", value)
                for converter in ("int", "str", "slug", "uuid", "path"):
                    path = path.replace(f"<{converter}:{name}>", value)
            client = Client()
            if person is not None:
                client.force_login(person)
            response = client.get(path)
            if response.status_code == 404:
                continue  # Django's debug 404 page (DEBUG in the suite) is left alone
            assert response.status_code < 500, path
            assert "Content-Security-Policy" in response.headers, path
            assert policy(response.headers["Content-Security-Policy"]) == expected_policy(), path
            checked += 1
    assert checked >= 40  # the walk reached the pages, not only a few


def test_the_api_documentation_holds_to_the_policy(client: Client) -> None:
    """Swagger UI's page: its start-up script a file of its own, its style from a file."""
    page = client.get("/api/v1/docs/")
    html = page.content.decode()
    assert page.status_code == 200
    assert inline_code(html) == []
    assert policy(page.headers["Content-Security-Policy"]) == expected_policy()
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("application/javascript")


TEMPLATE_DIRS = [PROJECT_DIR / "templates"] + [
    PROJECT_DIR / app / "templates"
    for app in ("audit", "tenants", "notifications", "orders", "recertification", "provisioning")
]


def without_comments(template: str) -> str:
    """The template less its comments (which may name what they keep out), lines kept."""

    def blank(match: re.Match[str]) -> str:
        return "\n" * match.group(0).count("\n")

    template = re.sub(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", blank, template, flags=re.S)
    return re.sub(r"{#.*?#}", blank, template)


def test_no_template_has_inline_script_or_style() -> None:
    """No <script> without src, <style>, style= or on*= attribute, nor javascript: URL in any
    template: the policy's script-src and style-src allow no inline code."""
    templates = [path for folder in TEMPLATE_DIRS for path in folder.rglob("*.html")]
    assert len(templates) > 50
    found = {
        str(path.relative_to(PROJECT_DIR)): inline_code(without_comments(path.read_text()))
        for path in templates
    }
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_the_template_scan_finds_inline_code() -> None:
    """The scan above can fail: each kind it looks for, outside a comment, is found."""
    template = (
        '{# <style> #}<p style="color: red" onclick="go()">x</p>\n'
        "<script>alert(1)</script><style>p {}</style>"
    )
    assert len(inline_code(without_comments(template))) == 4


def test_htmx_is_kept_from_inline_style_and_eval() -> None:
    """htmx adds a <style> element and evaluates hx-on / js: values unless told not to."""
    base = (PROJECT_DIR / "templates" / "base.html").read_text()
    assert (
        '<meta name="htmx-config" content=\'{"includeIndicatorStyles": false, '
        '"allowEval": false, "allowScriptTags": false}\'>'
    ) in base


# --- Throttles ---------------------------------------------------------------------------------


@pytest.fixture
def low_rates(settings: Any) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "person_read": "3/min",
            "person_write": "2/min",
            "client_read": "4/min",
            "client_write": "2/min",
        },
    }


@pytest.mark.django_db
def test_a_person_past_their_rate_gets_429_with_retry_after_and_others_do_not(
    low_rates: None, people: dict[str, Any]
) -> None:
    me, other = APIClient(), APIClient()
    me.force_login(people["kommune_admin"])
    other.force_login(people["kommune_reader"])

    answers = [me.get("/api/v1/grants/").status_code for _ in range(3)]
    throttled = me.get("/api/v1/grants/", HTTP_ACCEPT_LANGUAGE="nb")

    assert answers == [200, 200, 200]
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json()["detail"].startswith("For mange forespørsler. Prøv igjen om")
    assert other.get("/api/v1/grants/").status_code == 200  # another person is not affected


@pytest.mark.django_db
def test_writes_have_a_budget_of_their_own(low_rates: None, people: dict[str, Any]) -> None:
    me = APIClient()
    me.force_login(people["kommune_admin"])
    for _ in range(3):
        assert me.get("/api/v1/grants/").status_code == 200

    # Reads are spent; a write still goes through (and fails on its own merits), until the
    # writes are spent too.
    writes = [me.post("/api/v1/delegations/", {}, format="json").status_code for _ in range(3)]

    assert writes[:2] == [400, 400]
    assert writes[2] == 429


@pytest.mark.django_db
def test_the_429_speaks_english_too(low_rates: None, people: dict[str, Any]) -> None:
    me = APIClient()
    me.force_login(people["kommune_admin"])
    for _ in range(3):
        me.get("/api/v1/grants/")
    throttled = me.get("/api/v1/grants/", HTTP_ACCEPT_LANGUAGE="en")
    assert throttled.status_code == 429
    assert throttled.json()["detail"].startswith("Too many requests. Try again in")


@pytest.mark.django_db
def test_a_persons_pages_spend_the_same_budget_as_their_api_calls(
    low_rates: None, people: dict[str, Any], kommune: Organisation
) -> None:
    me, other = Client(), Client()
    me.force_login(people["kommune_admin"])
    other.force_login(people["kommune_reader"])
    page = reverse("tenants:people", args=[kommune.orgnr])

    answers = [me.get(page).status_code, me.get("/api/v1/grants/").status_code]
    answers.append(me.get(page).status_code)
    throttled = me.get(page, HTTP_ACCEPT_LANGUAGE="nb")
    api = me.get("/api/v1/grants/")

    assert answers == [200, 200, 200]
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    html = throttled.content.decode()
    assert '<h1 class="ds-heading" data-size="lg">For mange forespørsler</h1>' in html
    assert f"Prøv igjen om {throttled.headers['Retry-After']} sekunder." in html
    assert api.status_code == 429
    assert other.get(page).status_code == 200  # another person is not affected


@pytest.mark.django_db
def test_a_page_form_past_the_write_budget_saves_nothing(
    low_rates: None, people: dict[str, Any], vendor: Organisation
) -> None:
    me = Client()
    me.force_login(people["vendor_admin"])
    new = reverse("tenants:product_new", args=[vendor.orgnr])
    before = Product.objects.filter(vendor=vendor).count()

    posted = [me.post(new, {"name": f"Alarm {n}", "system_type": "VFT"}) for n in range(3)]

    assert [r.status_code for r in posted] == [302, 302, 429]
    assert "Try again in" in me.post(new, {}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert Product.objects.filter(vendor=vendor).count() == before + 2
    assert not Product.objects.filter(name="Alarm 2").exists()
    assert me.get(reverse("tenants:products", args=[vendor.orgnr])).status_code == 200


@pytest.mark.django_db
def test_the_counts_are_kept_in_redis_where_every_process_sees_them(
    low_rates: None, people: dict[str, Any], settings: Any, redis_server: Any
) -> None:
    """With production's cache (Redis), the count is a key in Redis: a second web process
    reads the same count (here: a connection of its own), and the fourth call is refused."""
    import redis

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
            "KEY_PREFIX": "tilgang",
        }
    }
    me = APIClient()
    me.force_login(people["kommune_admin"])
    assert [me.get("/api/v1/grants/").status_code for _ in range(3)] == [200, 200, 200]

    other_process = redis.Redis.from_url(redis_server.url)
    [key] = other_process.keys("tilgang:*throttle:person_read:*")
    assert int(other_process.get(key) or 0) == 3
    assert me.get("/api/v1/grants/").status_code == 429


@pytest.mark.django_db
def test_with_the_counts_redis_down_the_api_still_answers(
    low_rates: None, people: dict[str, Any], settings: Any
) -> None:
    """The counts' Redis (by default the broker's) does not answer: the API still serves, its
    calls uncounted meanwhile, never a 500. Found by `make chaos` (redis_down): every order and
    revocation through the API failed while the broker was down, though the outbox is there so
    that they need not."""
    from tests.components import free_port

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "KEY_PREFIX": "tilgang",
        }
    }
    me = APIClient()
    me.force_login(people["kommune_admin"])
    assert [me.get("/api/v1/grants/").status_code for _ in range(4)] == [200, 200, 200, 200]
    page = Client()
    page.force_login(people["nhn_auditor"])
    nhn = Organisation.objects.get(pk=people["nhn_auditor"].memberships.get().organisation_id)
    # The pages spend the same budget, and NHN's overview is kept in the same cache.
    assert page.get(reverse("provisioning:national", args=[nhn.orgnr])).status_code == 200
    assert page.get("/api/v1/overview/").status_code == 200
