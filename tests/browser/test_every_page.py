"""Every page of the portal in Chromium, visited by the person who reads it, with something on it
(the demo after some weeks of use: scripts/demo_scene.py), in bokmål and English: each holds to
check_page (axe-core finds no WCAG 2.1 A/AA violation, nothing scrolls sideways at 375 and
1280 px, no inline script or style, the title "<page> · Tilgang").

``SWEEP`` has an entry for every URL of the tenants, orders and provisioning apps, read from the
URL configuration: a URL without one fails ``test_every_url_of_the_portal_is_in_the_sweep``, so
a new page cannot escape it. An entry is the page's visits (who, with which arguments, what the
page then shows), or says why a GET shows no page of its own: POST only, a GET that only
redirects, or an htmx fragment, checked on the page that fetches it.

Each person logs in once through the provider and visits all their pages in one browser context;
the failures of all pages are reported together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import translation
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from notifications.models import Notification
from orders.models import Product
from scripts import demo_scene
from scripts.demo_scene import Scene
from scripts.screenshots import preview_order
from tenants.models import Organisation
from tests.browser.helpers import LANGUAGES, base_url, check_page, login, set_language

pytestmark = pytest.mark.integration

#: The apps whose URLs are pages of the portal (the API, the login's callbacks and the probes
#: are not).
APPS = ("tenants", "notifications", "orders", "recertification", "provisioning")

# Who reads the pages: the demo's people.
VISITOR = None
KOMMUNE = "admin@oslo.example"
#: Bergen's admin, for a new version of an instruction: Oslo's admin has a draft in progress,
#: which that page sends them on to.
BERGEN = "admin@bergen.example"
VENDOR = "admin@trygghet.example"
NHN = "drift@nhn.example"
#: The organisation each person's pages act for.
ACTS_FOR = {
    KOMMUNE: lambda s: s.oslo,
    BERGEN: lambda s: s.bergen,
    VENDOR: lambda s: s.trygghet,
    NHN: lambda s: s.nhn,
}

Args = Callable[[Scene], dict[str, Any]]


def no_args(scene: Scene) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Visit:
    """A GET of the page by ``person``, then (optionally) what they do on it, then the check."""

    person: str | None
    args: Args = no_args
    query: str = ""
    #: What the page's main part shows (read in the page's language): it is not empty.
    shows: Callable[[Scene], str] | None = None
    #: What the person does before the check, e.g. send the form to see its preview.
    then: Callable[[Page, Scene], None] | None = None
    #: The page is another site's (the provider's): the portal's URL redirects there.
    elsewhere: bool = False


@dataclass(frozen=True)
class PostOnly:
    """A URL that only takes a POST (its form is on another page): a GET gets 405."""

    person: str
    args: Args = no_args


@dataclass(frozen=True)
class Redirects:
    """A URL whose GET only sends the person on, to the URL named ``to``."""

    person: str
    to: str
    args: Args = no_args


@dataclass(frozen=True)
class Fragment:
    """An htmx fragment: the visit of page ``on`` makes the page fetch it, and checks it."""

    on: str


Entry = tuple[Visit, ...] | PostOnly | Redirects | Fragment


def product(scene: Scene) -> Product:
    return Product.objects.get(vendor=scene.trygghet)


def notification_of(organisation: Organisation) -> Notification:
    """The newest notification its people got (the demo's own, e.g. an order to consent to)."""
    notification = (
        Notification.objects.filter(organisation=organisation).order_by("-created_at").first()
    )
    assert notification is not None, f"the demo told {organisation.name} nothing"
    return notification


def suggest_vendor(page: Page, scene: Scene) -> None:
    """Type part of a vendor's name: htmx fetches the matching vendors as suggestions."""
    page.locator("input[name=vendor]").fill("Tryg")
    expect(page.locator("#vendor-options option")).to_have_count(1)


def wait_for_poll(page: Page, scene: Scene) -> None:
    """Let htmx fetch the live part once (the check then reads that fragment too)."""
    page.wait_for_event(
        "response", lambda response: response.request.headers.get("hx-request") == "true"
    )


def send_empty(page: Page, scene: Scene) -> None:
    """Send the page's form as it is: the page comes back with its errors beside the fields and
    in the summary on top."""
    page.locator("main form[method=post] button[type=submit]").last.click()
    expect(page.locator("[data-error-summary]")).to_be_focused()


SWEEP: dict[str, Entry] = {
    # --- Everyone ---
    "tenants:home": (Visit(VISITOR), Visit(KOMMUNE, shows=lambda s: s.oslo.name)),
    "oidc_authentication_init": (Visit(VISITOR, elsewhere=True),),  # the provider's login page
    "orders:catalogue": (Visit(VENDOR, shows=lambda s: s.opening.name),),
    "orders:dashboard": (
        Visit(KOMMUNE, shows=lambda s: s.trygghet.name),
        Visit(VENDOR, shows=lambda s: s.client.name),
        Visit(NHN, shows=lambda s: s.opening.name),
    ),
    "tenants:people": (Visit(KOMMUNE, shows=lambda s: s.invited.email),),
    "tenants:person_invite": (Visit(KOMMUNE), Visit(KOMMUNE, then=send_empty)),
    "tenants:person": (Visit(KOMMUNE, lambda s: {"pk": s.invited.pk}),),
    "tenants:person_remove": (Visit(KOMMUNE, lambda s: {"pk": s.invited.pk}),),
    # --- A kommune's admin ---
    "orders:instruction": (Visit(KOMMUNE, shows=lambda s: s.signed.signed_by_name),),
    "orders:instruction_new": (Visit(BERGEN),),
    "orders:instruction_compare": (
        Visit(KOMMUNE, query="a=1&b=2", shows=lambda s: s.draft.retention),
    ),
    "orders:instruction_print": (
        Visit(KOMMUNE, lambda s: {"version": s.signed.version}, shows=lambda s: s.oslo.name),
    ),
    "orders:instruction_review": (Visit(KOMMUNE, lambda s: {"version": s.draft.version}),),
    "orders:instruction_step": tuple(
        Visit(KOMMUNE, lambda s, slug=slug: {"version": s.draft.version, "slug": slug})
        for slug in ("services", "purpose", "sharing", "contact")
    ),
    "orders:instruction_sign": Redirects(
        KOMMUNE, "orders:instruction_review", lambda s: {"version": s.draft.version}
    ),
    # The provider's page asking for a fresh login before a signature.
    "orders:instruction_confirm_login": (
        Visit(KOMMUNE, lambda s: {"version": s.draft.version}, elsewhere=True),
    ),
    "orders:delegations": (Visit(KOMMUNE, shows=lambda s: s.trygghet.name),),
    "orders:delegation_new": (Visit(KOMMUNE, then=suggest_vendor),),
    "orders:vendor_suggestions": Fragment(on="orders:delegation_new"),
    "orders:delegation_revoke": (
        Visit(KOMMUNE, lambda s: {"pk": s.delegation.pk}, shows=lambda s: s.client.name),
    ),
    "orders:approvals": (Visit(KOMMUNE, shows=lambda s: s.hjemme.name),),
    "orders:approval": (
        Visit(KOMMUNE, lambda s: {"pk": s.waiting.pk}, shows=lambda s: s.trygghet.name),
    ),
    "orders:access": (Visit(KOMMUNE, shows=lambda s: s.test_client.name),),
    "orders:grant_revoke": (
        Visit(KOMMUNE, lambda s: {"pk": s.active_grant.pk}, shows=lambda s: s.client.name),
    ),
    "tenants:epj": (Visit(KOMMUNE, shows=lambda s: s.suspended.name),),
    "recertification:page": (Visit(KOMMUNE, shows=lambda s: s.trygghet.name),),
    # The kommune's, the vendor's and NHN's: now, and over a period (revoked grants too).
    # Each shows a client's client_id, which only a row of the answer holds.
    "orders:access_history": (
        Visit(KOMMUNE, shows=lambda s: "trygghet-alarm-prod"),
        Visit(VENDOR, shows=lambda s: "trygghet-alarm-test"),
        Visit(NHN, shows=lambda s: "trygghet-alarm-prod"),
        Visit(NHN, query="from=2020-01-01T00:00&sort=kommune", shows=lambda s: "epic-trondheim"),
    ),
    # --- A vendor's admin ---
    "tenants:products": (Visit(VENDOR, shows=lambda s: product(s).name),),
    "tenants:product_new": (Visit(VENDOR),),
    "tenants:product": (Visit(VENDOR, lambda s: {"product_id": product(s).pk}),),
    "orders:clients": (Visit(VENDOR, shows=lambda s: s.test_client.name),),
    "orders:client_new": (Visit(VENDOR), Visit(VENDOR, then=send_empty)),
    "orders:client": (
        Visit(VENDOR, lambda s: {"client_id": s.client.pk}, shows=lambda s: s.oslo.name),
    ),
    "orders:client_key_add": (Visit(VENDOR, lambda s: {"client_id": s.client.pk}),),
    "orders:client_key_remove": PostOnly(
        VENDOR, lambda s: {"client_id": s.client.pk, "key_id": s.client.keys.first().pk}
    ),
    "orders:client_remove": (
        Visit(VENDOR, lambda s: {"client_id": s.client.pk}, shows=lambda s: s.oslo.name),
    ),
    "orders:orders": (Visit(VENDOR, shows=lambda s: s.bergen.name),),
    "orders:order_new": (Visit(VENDOR), Visit(VENDOR, then=preview_order)),
    "orders:order_send": PostOnly(VENDOR),
    "orders:order": (
        Visit(VENDOR, lambda s: {"pk": s.order.pk}, shows=lambda s: s.failed_grant.service.name),
        Visit(VENDOR, lambda s: {"pk": s.kommune_order.pk}),  # consent to the kommune's order
        # A grant being revoked: the page follows it live.
        Visit(VENDOR, lambda s: {"pk": s.test_order.pk}, then=wait_for_poll),
    ),
    "orders:order_withdraw": PostOnly(VENDOR, lambda s: {"pk": s.order.pk}),
    "orders:order_consent": PostOnly(VENDOR, lambda s: {"pk": s.kommune_order.pk}),
    "orders:grant_try": (
        Visit(VENDOR, lambda s: {"pk": s.active_grant.pk}, shows=lambda s: s.client.client_id),
    ),
    # --- NHN's operator ---
    "orders:matrix": (Visit(NHN, shows=lambda s: s.bergen.name),),
    "orders:nhn_grants": (
        Visit(NHN, shows=lambda s: s.test_client.name),
        Visit(NHN, query="status=waiting", shows=lambda s: s.hjemme.name),
    ),
    "orders:availability": (Visit(NHN, shows=lambda s: s.opening.name),),
    "orders:availability_edit": (
        Visit(NHN, lambda s: {"code": s.opening.code, "environment": "production"}),
    ),
    "tenants:organisations": (Visit(NHN, shows=lambda s: s.hjemme.name),),
    "tenants:organisation_new": (Visit(NHN), Visit(NHN, then=send_empty)),
    "tenants:organisation": (Visit(NHN, lambda s: {"target": s.oslo.orgnr}),),
    "tenants:product_verification": (Visit(NHN, shows=lambda s: s.unverified.name),),
    "tenants:product_verify": (Visit(NHN, lambda s: {"product_id": s.unverified.pk}),),
    "provisioning:jobs": (Visit(NHN, shows=lambda s: demo_scene.JOB_ERROR),),
    "provisioning:job": (
        Visit(NHN, lambda s: {"job_id": s.failed_job.pk}, shows=lambda s: demo_scene.JOB_ERROR),
        Visit(NHN, lambda s: {"job_id": s.pending_job.pk}, then=wait_for_poll),  # followed live
    ),
    "provisioning:job_retry": PostOnly(NHN, lambda s: {"job_id": s.failed_job.pk}),
    "orders:vendors": (Visit(NHN, shows=lambda s: s.suspended.name),),
    "orders:vendor": (
        Visit(NHN, lambda s: {"vendor_orgnr": s.trygghet.orgnr}, shows=lambda s: s.oslo.name),
        Visit(NHN, lambda s: {"vendor_orgnr": s.suspended.orgnr}, shows=lambda s: "Trondheim"),
    ),
    "orders:vendor_suspend": PostOnly(NHN, lambda s: {"vendor_orgnr": s.trygghet.orgnr}),
    "orders:vendor_lift": PostOnly(NHN, lambda s: {"vendor_orgnr": s.suspended.orgnr}),
    "tenants:audit": (Visit(NHN, shows=lambda s: s.oslo.name),),
    "provisioning:data_access": (
        Visit(KOMMUNE, shows=lambda s: s.client.name),
        Visit(VENDOR, shows=lambda s: s.oslo.name),
        Visit(NHN, shows=lambda s: s.trondheim.name, query="days=30"),  # today's by default
    ),
    # --- Everyone's own notifications ---
    "notifications:list": (
        Visit(VENDOR, shows=lambda s: s.oslo.name),
        Visit(KOMMUNE, query="show=unread", shows=lambda s: s.trygghet.name),
    ),
    "notifications:notification": (
        Visit(
            VENDOR, lambda s: {"pk": notification_of(s.trygghet).pk}, shows=lambda s: s.oslo.name
        ),
    ),
    "notifications:read_all": PostOnly(VENDOR),
    "provisioning:national": (
        Visit(NHN, shows=lambda s: s.active_grant.service.name),
        Visit(NHN, query="months=3&interval=day"),
    ),
    "orders:epj_register": (
        Visit(NHN, shows=lambda s: s.oslo.name),  # on the risk list
        Visit(NHN, query="vkp=no", shows=lambda s: s.bergen.name),
    ),
}
#: Pages of the portal outside its apps: the login, which leads to the provider's page.
OUTSIDE_THE_APPS = {"oidc_authentication_init"}


def portal_urls() -> dict[str, set[str]]:
    """Each URL of the portal's apps by name, with the names of its arguments; a URL without a
    name is listed by its route, so it is missing from the sweep too."""
    found: dict[str, set[str]] = {}

    def walk(patterns: list[Any], namespace: str | None, arguments: set[str]) -> None:
        for pattern in patterns:
            here = arguments | set(getattr(pattern.pattern, "converters", {}))
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace, here)
            elif isinstance(pattern, URLPattern) and namespace in APPS:
                found[f"{namespace}:{pattern.name or pattern.pattern}"] = here

    walk(get_resolver().url_patterns, None, set())
    return found


def url_of(name: str, person: str | None, args: Args, scene: Scene) -> str:
    kwargs = args(scene)
    if person in ACTS_FOR and "orgnr" in portal_urls().get(name, set()):
        kwargs.setdefault("orgnr", ACTS_FOR[person](scene).orgnr)
    return reverse(name, kwargs=kwargs)


def test_every_url_of_the_portal_is_in_the_sweep() -> None:
    urls = portal_urls()

    missing = sorted(set(urls) - set(SWEEP))
    assert not missing, (
        f"no entry in SWEEP (tests/browser/test_every_page.py) for {missing}: add the page's "
        "visits, or say why a GET shows no page (PostOnly, Redirects, Fragment)"
    )
    assert set(SWEEP) - set(urls) == OUTSIDE_THE_APPS, "SWEEP names URLs that are gone"
    assert len(urls) > 50  # the walk found the apps' URLs
    for name, entry in SWEEP.items():
        if isinstance(entry, Fragment):
            assert isinstance(SWEEP[entry.on], tuple), f"{name} is fetched by no visited page"
        elif isinstance(entry, tuple):
            assert entry, f"{name} has no visit"


@dataclass
class Sweep:
    """What one group of people finds on their pages."""

    scene: Scene
    failures: list[str] = field(default_factory=list)
    visited: int = 0

    def fail(self, what: str, error: Exception) -> None:
        message = str(error).strip()
        self.failures.append(f"{what}:\n{message[:4000]}")


def look(page: Page, url: str, visit: Visit, language: str, scene: Scene) -> None:
    """Load the page in ``language``, do what the visit does, and check it."""
    set_language(page, language)
    response = page.goto(url)
    assert response is not None, f"no response for {url}"
    assert response.status == 200, f"GET {url} answered {response.status}"
    if not visit.elsewhere:
        assert page.url == f"{base_url(page)}{url}", f"GET {url} was sent on to {page.url}"
    expect(page.locator("html")).to_have_attribute("lang", language)
    if visit.then is not None:
        visit.then(page, scene)
    if visit.shows is not None:
        with translation.override(language):
            shown = visit.shows(scene)
        expect(page.get_by_role("main")).to_contain_text(shown)
    check_page(page)


def sweep_as(page: Page, person: str | None, sweep: Sweep) -> None:
    """``person`` (logged in already, or a visitor) visits each of their pages in both
    languages, and GETs each URL of theirs that shows no page."""
    visits = [
        (name, visit)
        for name, entry in SWEEP.items()
        if isinstance(entry, tuple)
        for visit in entry
        if visit.person == person
    ]
    # Pages elsewhere (the provider's) last: the person leaves the portal there.
    visits.sort(key=lambda pair: pair[1].elsewhere)
    for name, visit in visits:
        url = url_of(name, person, visit.args, sweep.scene)
        if visit.query:
            url = f"{url}?{visit.query}"
        for language in LANGUAGES:
            try:
                look(page, url, visit, language, sweep.scene)
            except (AssertionError, PlaywrightError) as error:
                sweep.fail(f"{name} {url} ({language}) as {person or 'a visitor'}", error)
            sweep.visited += 1

    for name, entry in SWEEP.items():
        if not isinstance(entry, PostOnly | Redirects) or entry.person != person:
            continue
        url = url_of(name, person, entry.args, sweep.scene)
        answer = page.request.get(f"{base_url(page)}{url}", max_redirects=0)
        try:
            if isinstance(entry, PostOnly):
                assert answer.status == 405, f"GET {url} answered {answer.status}, not 405"
            else:
                to = url_of(entry.to, person, entry.args, sweep.scene)
                assert answer.status == 302, f"GET {url} answered {answer.status}, not 302"
                assert answer.headers["location"] == to, answer.headers["location"]
        except AssertionError as error:
            sweep.fail(f"{name} {url} as {person}", error)


GROUPS = {
    "visitor": (VISITOR,),
    "kommune admins": (KOMMUNE, BERGEN),
    "vendor admin": (VENDOR,),
    "NHN operator": (NHN,),
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_page_holds_to_the_rules_in_both_languages_for_the_person_who_reads_it(
    group: str, open_page: Callable[[], Page], demo_data: None
) -> None:
    sweep = Sweep(scene=demo_scene.build())

    for person in GROUPS[group]:
        page = open_page()
        if person is not None:
            login(page, person)
        sweep_as(page, person, sweep)

    assert sweep.visited > 0
    assert not sweep.failures, (
        f"{len(sweep.failures)} of {sweep.visited} page loads fail:\n\n"
        + "\n\n".join(sweep.failures)
    )


def test_each_person_of_the_sweep_has_a_group() -> None:
    people = {
        entry.person
        for entries in SWEEP.values()
        if isinstance(entries, tuple)
        for entry in entries
    }
    people |= {e.person for e in SWEEP.values() if isinstance(e, PostOnly | Redirects)}
    assert people == {person for group in GROUPS.values() for person in group}
