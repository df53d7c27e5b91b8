"""The issue's journey in the browser, end to end, as the four people do it.

Oslo's admin signs a data-processing instruction (with the fresh login the signature asks for)
and delegates reading Patient to Trygghet AS. Trygghet's admin makes a key pair in the browser,
registers a client with it, checks and sends an order for Oslo and Bergen (Oslo's approved by the
delegation, Bergen's waiting for the kommune), and watches Oslo's access become active on the
order's live page; the portal's "try it" Python script, run with the downloaded key, gets 200
from the gateway. Bergen's admin, told by the waiting item that production access needs a signed
instruction, signs Bergen's and approves the item. Oslo's admin revokes the access after its
preview, and the same script gets 403. NHN's auditor finds all of it in the access matrix and
the audit trail.

Everything goes through the real parts: the provider's login pages (oidc-provider), Celery
workers, HAProxy. Elements are found by role and accessible name; nothing sleeps (expect() waits
for what a page comes to show, and the gateway is polled for its answer, within bounds). Every
page the journey visits holds to check_page in both languages, checked as the person who visits
it, once per role.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Frame, Locator, Page, expect

from tests.browser.helpers import (
    check_page,
    login,
    provider_login,
    set_language,
)
from tests.components import VENV_BIN
from tests.provisioning.stack import Stack

pytestmark = pytest.mark.integration

OSLO, BERGEN = "958935420", "964338531"  # their organisation numbers (seed_demo)
CLIENT_NAME = "Trygghet Alarm i drift"
#: Provisioning and the gateway's reloads are quick; these bounds only stop a broken run.
PROVISIONING_TIMEOUT_MS = 60_000
GATEWAY_TIMEOUT_S = 60.0


# --- Checking every page visited -------------------------------------------------------------


class Visits:
    """Checks the pages a person visits: each page as the journey sees it, in bokmål (with its
    messages and the fragments it fetched), then reloaded in English. A page is checked once
    per role (``checked`` is shared by people of one role): the same page of another
    organisation, or another object's, is the same template with the same rules."""

    def __init__(self, page: Page, checked: set[str]) -> None:
        self.page = page
        self.checked = checked

    def check(self) -> None:
        page = self.page
        url = page.url
        if (key := page_key(url)) in self.checked:
            return
        self.checked.add(key)
        check_page(page)
        set_language(page, "en")
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        check_page(page)
        set_language(page, "nb")
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("lang", "nb")

    def check_provider(self, kind: str) -> None:
        """The provider's login page (``kind``: the login, or the fresh one before a
        signature) as it stands, then in English and back (it follows ``ui_locales``)."""
        page = self.page
        if (key := f"provider:{kind}") in self.checked:
            return
        self.checked.add(key)
        url = page.url
        check_page(page)
        for language in ("en", "nb"):
            set_language(page, language)
            page.goto(f"{url}?ui_locales={language}")
            expect(page.locator("html")).to_have_attribute("lang", language)
            if language == "en":
                check_page(page)


def page_key(url: str) -> str:
    """The page an address shows: its path with the numbers and ids in it (orgnr, version,
    uuid) left out, and the names of its query's parameters."""
    parts = urlsplit(url)
    path = re.sub(r"/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/", "/<id>/", parts.path)
    path = re.sub(r"/\d+/", "/<n>/", path)
    return f"{path}?{'&'.join(sorted(parse_qs(parts.query)))}"


def menu(page: Page, name: str) -> None:
    """Follow a link of the main menu."""
    page.get_by_role("navigation", name="Hovedmeny").get_by_role(
        "link", name=re.compile(rf"^{re.escape(name)}(\s|$)")
    ).click()


def heading(page: Page, name: str | re.Pattern[str]) -> Locator:
    return page.get_by_role("heading", level=1, name=name)


def message(page: Page) -> Locator:
    """What a page says after a POST (django.contrib.messages)."""
    return page.get_by_role("main").get_by_role("status")


def open_organisation(page: Page, visits: Visits, name: str) -> None:
    """From the start page after the login, into the organisation's overview."""
    expect(heading(page, "Mine organisasjoner")).to_be_visible()
    visits.check()
    page.get_by_role("main").get_by_role("link", name=name).click()
    # Every page of an organisation says which one it acts for.
    expect(page.get_by_role("banner").get_by_role("link", name=name)).to_be_visible()
    visits.check()


# --- The try-it script -----------------------------------------------------------------------


def run_script(script: Path) -> str:
    """Run the portal's Python script as a vendor would; what it prints (the HTTP status), or
    its error."""
    done = subprocess.run(
        [str(VENV_BIN / "python"), script.name],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else f"failed: {done.stderr.strip()}"


def wait_for_status(script: Path, status: str, *, timeout: float) -> None:
    """Run the script until it prints ``status`` (a bounded wait on the gateway's answer)."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = run_script(script)
        if seen == status:
            return
    raise AssertionError(f"the try-it script printed {seen!r}, not {status}, for {timeout} s")


# --- The journey -----------------------------------------------------------------------------


def test_the_journey_of_a_kommune_a_vendor_and_nhn_through_the_real_stack(
    open_page: Callable[[], Page], demo_data: None, stack: Stack, tmp_path: Path
) -> None:
    work = tmp_path / "vendor-machine"
    work.mkdir()

    # Pages checked, per role.
    kommune_admin: set[str] = set()

    # 1. Oslo's admin signs an instruction that covers Patient, and delegates it to Trygghet.
    oslo = open_page()
    oslo_visits = Visits(oslo, kommune_admin)
    oslo.goto("/oidc/authenticate/")
    expect(oslo).to_have_url(re.compile(r"/interaction/"))
    oslo_visits.check_provider("login")
    provider_login(oslo, "admin@oslo.example")
    open_organisation(oslo, oslo_visits, "Oslo kommune")
    menu(oslo, "Databehandlerinstruks")
    sign_instruction(oslo, oslo_visits, "admin@oslo.example")
    delegate(oslo, oslo_visits)

    # 2. Trygghet's admin makes a key, registers a client, orders for Oslo and Bergen, and
    # watches Oslo's access become active.
    trygghet = open_page()
    trygghet_visits = Visits(trygghet, set())
    login(trygghet, "admin@trygghet.example")
    open_organisation(trygghet, trygghet_visits, "Trygghet AS")
    key_file = register_client(trygghet, trygghet_visits, work)
    order(trygghet, trygghet_visits)
    script = watch_and_try(trygghet, trygghet_visits, work, stack)
    # As the page says: the downloaded key next to the script, which reads it by the name
    # the download was given.
    named = re.search(r'^PRIVATE_KEY_FILE = "([^"/]+)"$', script.read_text(), re.MULTILINE)
    assert named, "the script names no key file at its top"
    assert named[1] == key_file.name
    assert key_file.parent == script.parent

    # 3. The page's own script, with the downloaded key, gets through the gateway.
    assert run_script(script) == "200"

    # 4. Bergen's admin approves what waits for Bergen: after signing Bergen's first
    # instruction, which production access needs.
    bergen = open_page()
    bergen_visits = Visits(bergen, kommune_admin)
    login(bergen, "admin@bergen.example")
    open_organisation(bergen, bergen_visits, "Bergen kommune")
    approve(bergen, bergen_visits)

    # 5. Oslo's admin revokes the access after its preview; the gateway says no.
    revoke(oslo, oslo_visits)
    wait_for_status(script, "403", timeout=GATEWAY_TIMEOUT_S)

    # 6. NHN's auditor finds it all.
    revisor = open_page()
    revisor_visits = Visits(revisor, set())
    login(revisor, "revisor@nhn.example")
    open_organisation(revisor, revisor_visits, "Norsk helsenett SF")
    audit(revisor, revisor_visits)


def sign_instruction(page: Page, visits: Visits, email: str) -> None:
    """From the instruction's page: a first version covering Patient, signed."""
    expect(heading(page, "Databehandlerinstruks")).to_be_visible()
    visits.check()
    page.get_by_role("link", name="Ny versjon").click()

    expect(heading(page, "Tjenester")).to_be_visible()
    visits.check()
    page.get_by_role("checkbox", name="Pasient (patient)").check()
    page.get_by_role("button", name="Neste").click()

    expect(heading(page, "Formål og opplysninger")).to_be_visible()
    visits.check()
    page.get_by_label("Hva behandlingen gjelder", exact=True).fill(
        "Velferdsteknologi i hjemmetjenesten."
    )
    page.get_by_label("Behandlingens art og formål", exact=True).fill(
        "Gjør pasientopplysninger tilgjengelige for trygghetsalarmen."
    )
    page.get_by_label("Kategorier av personopplysninger", exact=True).fill("helseopplysninger")
    page.get_by_label("Kategorier av registrerte", exact=True).fill("pasienter")
    page.get_by_role("button", name="Neste").click()

    expect(heading(page, "Deling")).to_be_visible()
    visits.check()
    page.get_by_role("radio", name="Bare innad i kommunen").check()
    page.get_by_role("button", name="Neste").click()

    expect(heading(page, "Lagringstid og kontakt")).to_be_visible()
    visits.check()
    page.get_by_label("Lagringstid", exact=True).fill("Så lenge tjenesten leveres.")
    page.get_by_label("Varighet for instruksen", exact=True).fill("Til avtalen opphører.")
    page.get_by_label("Kontaktperson", exact=True).fill("Kari Nordmann")
    page.get_by_label("E-post til kontaktperson", exact=True).fill("kari@oslo.example")
    page.get_by_role("button", name="Neste").click()

    expect(heading(page, "Se over og signer")).to_be_visible()
    visits.check()
    review = page.url
    page.get_by_role("button", name="Signer").click()

    # The signature asks the provider for a fresh login first (prompt=login).
    expect(page).to_have_url(re.compile(r"/interaction/"))
    expect(page.get_by_text("Logg inn på nytt for å bekrefte at det er deg")).to_be_visible()
    visits.check_provider("fresh login")
    provider_login(page, email)
    expect(page).to_have_url(review)
    expect(page.get_by_text("Du har nettopp logget inn på nytt")).to_be_visible()
    page.get_by_role("button", name="Signer").click()

    expect(heading(page, "Databehandlerinstruks")).to_be_visible()
    expect(message(page)).to_contain_text("Versjon 1 er signert")
    current = page.get_by_role("region", name="Gjeldende versjon")
    expect(current).to_contain_text("Pasient (patient)")
    visits.check()


def delegate(page: Page, visits: Visits) -> None:
    menu(page, "Delegeringer")
    expect(heading(page, "Delegeringer")).to_be_visible()
    visits.check()
    page.get_by_role("link", name="Ny delegering").click()
    expect(heading(page, "Ny delegering")).to_be_visible()
    visits.check()

    vendor = page.get_by_label("Leverandør", exact=True)
    vendor.press_sequentially("Trygg")
    # The field suggests vendors by name as one types (htmx fills its list).
    suggestion = "Trygghet AS (910 000 012)"
    expect(page.locator("#vendor-options option")).to_have_attribute("value", suggestion)
    vendor.fill(suggestion)
    page.get_by_role("checkbox", name="Lese Pasient", exact=True).check()
    page.get_by_role("button", name="Deleger").click()

    expect(heading(page, "Delegeringer")).to_be_visible()
    expect(message(page)).to_contain_text("Trygghet AS")
    table = page.get_by_role("table", name="Delegeringer til leverandører")
    expect(table.get_by_role("row", name=re.compile("Trygghet AS"))).to_contain_text("Pasient")
    visits.check()


def register_client(page: Page, visits: Visits, work: Path) -> Path:
    """Register a production client with a key pair made in the browser; the private key's
    file, as downloaded."""
    menu(page, "Klienter")
    expect(heading(page, "Klienter")).to_be_visible()
    visits.check()
    page.get_by_role("main").get_by_role("link", name="Registrer en klient").first.click()
    expect(heading(page, "Registrer en klient")).to_be_visible()
    visits.check()

    page.get_by_label("Produkt", exact=True).select_option(label="Trygghet Alarm (VFT)")
    page.get_by_role("radio", name="Produksjon").check()
    page.get_by_label("Navn på klienten", exact=True).fill(CLIENT_NAME)
    page.get_by_role("button", name="Lag nøkkelpar i nettleseren").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Last ned privat nøkkel (PEM)").click()
    download = download_info.value
    key_file = work / download.suggested_filename
    download.save_as(key_file)
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    page.get_by_role("button", name="Registrer klient").click()

    expect(heading(page, CLIENT_NAME)).to_be_visible()
    visits.check()
    return key_file


def order(page: Page, visits: Visits) -> None:
    """Order reading Patient for Oslo and Bergen: first the decisions, then the order."""
    menu(page, "Ny bestilling")
    expect(heading(page, "Ny bestilling")).to_be_visible()
    visits.check()
    page.get_by_label("Klient", exact=True).select_option(label=f"{CLIENT_NAME} (produksjon)")
    page.get_by_role("checkbox", name="Pasient: lese").check()
    page.get_by_role("checkbox", name="Oslo kommune (0301)").check()
    page.get_by_role("checkbox", name="Bergen kommune (4601)").check()
    page.get_by_role("button", name="Se hva som skjer").click()

    expect(heading(page, "Se over bestillingen")).to_be_visible()
    decisions = page.get_by_role("region", name="Hva reglene bestemmer, og hvorfor")
    expect(decisions.get_by_role("row", name=re.compile("^Oslo kommune"))).to_contain_text(
        "Godkjent"
    )
    expect(decisions.get_by_role("row", name=re.compile("^Bergen kommune"))).to_contain_text(
        "Venter på kommunen"
    )
    # The preview is the answer to a POST: checked as it is, then again in English.
    check_page(page)
    set_language(page, "en")
    page.get_by_role("link", name="Endre svarene").click()
    expect(heading(page, "New order")).to_be_visible()
    page.get_by_role("button", name="See what will happen").click()
    expect(heading(page, "Check your order")).to_be_visible()
    check_page(page)
    set_language(page, "nb")
    page.get_by_role("link", name="Change your answers").click()
    expect(heading(page, "Ny bestilling")).to_be_visible()
    page.get_by_role("button", name="Se hva som skjer").click()
    expect(heading(page, "Se over bestillingen")).to_be_visible()
    page.get_by_role("button", name="Send bestillingen").click()

    expect(heading(page, "Bestillinger")).to_be_visible()
    expect(message(page)).to_contain_text("Bestillingen er sendt")
    visits.check()


def watch_and_try(page: Page, visits: Visits, work: Path, stack: Stack) -> Path:
    """Watch Oslo's access become active on the order's live page, then save the page's
    "try it" Python script next to the key; the script's file.

    The workers start only now, with the page open: until then the client's registration and
    the access wait in the queue, so the page shows them under way and is seen to change."""
    orders = page.get_by_role("table", name=re.compile("^Bestillinger"))
    orders.get_by_role("link", name="Oslo kommune", exact=True).click()
    expect(heading(page, "Bestilling for Oslo kommune")).to_be_visible()
    progress = page.get_by_role("region", name="Virker det ennå?")
    expect(progress).to_contain_text("Registrert hos autorisasjonsserveren: pågår")
    # The steps update in place (htmx) until the access is active: the page is not reloaded.
    reloads: list[str] = []

    def navigated(frame: Frame) -> None:
        reloads.append(frame.url)

    page.on("framenavigated", navigated)
    stack.start_worker()
    stack.start_close_worker()
    expect(progress).to_contain_text(
        "Aktiv: fagsystemet kan kalle tjenesten: ferdig", timeout=PROVISIONING_TIMEOUT_MS
    )
    page.remove_listener("framenavigated", navigated)
    assert not reloads, f"the order's page was loaded again: {reloads}"
    visits.check()
    page.get_by_role("link", name=re.compile("^Slik kaller du tjenesten")).click()
    expect(heading(page, "Slik kaller du Pasient for Oslo kommune")).to_be_visible()
    visits.check()
    script = work / "call.py"
    script.write_text(page.get_by_role("region", name="Python-skript").inner_text())
    return script


def approve(page: Page, visits: Visits) -> None:
    menu(page, "Godkjenninger")
    expect(heading(page, "Godkjenninger")).to_be_visible()
    visits.check()
    consider = page.get_by_role("link", name=re.compile("^Vurder .*Trygghet AS"))
    consider.click()
    expect(heading(page, "Trygghet AS ber om å lese Pasient")).to_be_visible()
    # Production access needs the kommune's signed instruction: the item says so.
    expect(page.get_by_role("main")).to_contain_text("ingen signert databehandlerinstruks")
    visits.check()
    page.get_by_role("main").get_by_role("link", name="Gå til instruksen").click()
    sign_instruction(page, visits, "admin@bergen.example")

    # The item went on by itself to the next rule: no delegation, so it waits for the admin.
    menu(page, "Godkjenninger")
    consider.click()
    expect(heading(page, "Trygghet AS ber om å lese Pasient")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(
        "Ingen delegering fra Bergen kommune til Trygghet AS"
    )
    page.get_by_role("button", name="Godkjenn", exact=True).click()
    expect(heading(page, "Godkjenninger")).to_be_visible()
    expect(message(page)).to_contain_text("1 linje godkjent: tilgangen klargjøres nå.")
    visits.check()


def revoke(page: Page, visits: Visits) -> None:
    menu(page, "Tilganger")
    expect(heading(page, "Tilganger")).to_be_visible()
    visits.check()
    access = page.get_by_role("table", name="Tilganger til dataene våre")
    row = access.get_by_role("row", name=re.compile(f"^Trygghet AS {CLIENT_NAME} Pasient"))
    expect(row).to_contain_text("Aktiv")
    row.get_by_role("link", name=f"Trekk tilbake Pasient (lese) for {CLIENT_NAME}").click()
    # The preview: what closes, before anything does.
    expect(
        heading(page, f"Trekke tilbake tilgangen {CLIENT_NAME} har til å lese Pasient?")
    ).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Bare denne tilgangen stenges")
    visits.check()
    page.get_by_role("button", name="Trekk tilbake").click()

    expect(heading(page, "Tilganger")).to_be_visible()
    expect(message(page)).to_contain_text("Tilgangen er trukket tilbake")
    visits.check()


def audit(page: Page, visits: Visits) -> None:
    menu(page, "Tilgangsmatrise")
    expect(heading(page, "Tilgangsmatrise")).to_be_visible()
    visits.check()
    matrix = page.get_by_role("table", name="Tilgang etter kommune og tjeneste")
    cell = matrix.get_by_role("link", name=re.compile("^Oslo kommune, Pasient:"))
    expect(cell).to_contain_text("1 trukket tilbake")
    cell.click()
    expect(heading(page, "Tilganger: Oslo kommune, Pasient")).to_be_visible()
    grants = page.get_by_role("row", name=re.compile("Trygghet AS"))
    expect(grants).to_contain_text("Trukket tilbake")
    visits.check()

    menu(page, "Revisjonsspor")
    expect(heading(page, "Revisjonsspor")).to_be_visible()
    visits.check()
    filters = page.get_by_role("search", name="Filtrer revisjonssporet")
    filters.get_by_label(re.compile("^Kommune")).select_option(label="Oslo kommune (958 935 420)")
    filters.get_by_role("button", name="Vis").click()
    expect(page).to_have_url(re.compile(f"kommune={OSLO}"))
    trail = page.get_by_role("table", name="Hendelser, nyeste først")
    for action in (
        "Databehandlerinstruks signert",
        "Delegering gitt",
        "Bestilling sendt",
        "Tilgang trukket tilbake",
    ):
        expect(trail.get_by_role("rowheader", name=action).first).to_be_visible()
    visits.check()
    filters = page.get_by_role("search", name="Filtrer revisjonssporet")
    filters.get_by_label(re.compile("^Kommune")).select_option(label="Bergen kommune (964 338 531)")
    filters.get_by_role("button", name="Vis").click()
    expect(page).to_have_url(re.compile(f"kommune={BERGEN}"))
    expect(trail.get_by_role("rowheader", name="Bestilling godkjent av kommunen")).to_be_visible()
    visits.check()
