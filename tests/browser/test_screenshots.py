"""`make screenshots` (scripts/screenshots.py): its list of pages is sound, it photographs them
logged in through the provider, writes PNGs with a palette, and runs on its own from nothing but
the repository."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from scripts import demo_scene, screenshots
from tenants.management.commands.seed_demo import DEMO_LOGINS
from tests.browser.conftest import LivePortal
from tests.components import PROJECT_DIR

pytestmark = pytest.mark.integration


def png_size(file: Path) -> tuple[int, int]:
    data = file.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{file} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_every_shot_is_a_page_of_the_portal_taken_by_a_demo_person(demo_data: None) -> None:
    scene = demo_scene.build()
    slugs = [shot.slug for shot in screenshots.SHOTS]
    assert len(slugs) == len(set(slugs)), "two shots would write the same files"
    demo_people = {email for email, _role, _organisation in DEMO_LOGINS}
    for shot in screenshots.SHOTS:
        assert shot.person is None or shot.person in demo_people, shot
        assert screenshots.path_of(shot, scene).startswith("/"), shot


def test_a_shot_of_an_object_of_the_scene_names_it_in_its_path(demo_data: None) -> None:
    scene = demo_scene.build()
    shot = screenshots.Shot(
        "admin@trygghet.example", "orders:client", "client", args=(("client_id", "client.pk"),)
    )

    assert screenshots.path_of(shot, scene) == f"/o/910000012/clients/{scene.client.pk}/"
    with pytest.raises(ValueError, match="client.pk is an attribute of the scene"):
        screenshots.path_of(shot)


def test_a_path_may_name_the_persons_organisation(demo_data: None) -> None:
    shot = screenshots.Shot("admin@bergen.example", "/o/{orgnr}/", "bergen")

    assert screenshots.path_of(shot) == "/o/964338531/"


def test_the_shots_are_taken_in_each_language_and_width_logged_in_through_the_provider(
    browser: Browser, live_portal: LivePortal, demo_data: None, tmp_path: Path
) -> None:
    shots = [
        screenshots.Shot(None, "oidc_authentication_init", "login"),
        screenshots.Shot("admin@oslo.example", "orders:dashboard", "oslo"),
    ]

    written = screenshots.take(browser, live_portal.url, shots, tmp_path, widths=(1280, 375))

    assert sorted(file.name for file in written) == [
        "login-en-1280.png", "login-en-375.png", "login-nb-1280.png", "login-nb-375.png",
        "oslo-en-1280.png", "oslo-en-375.png", "oslo-nb-1280.png", "oslo-nb-375.png",
    ]  # fmt: skip
    for file in written:
        width, height = png_size(file)
        assert width == int(file.stem.rsplit("-", 1)[1])
        assert height > 300
        assert file.read_bytes()[25] == 3, f"{file} has no palette"  # IHDR's colour type


def pixels(browser: Browser, png: bytes) -> list[int]:
    """The RGBA values of a PNG, decoded by Chromium."""
    page = browser.new_page()
    try:
        return list(
            page.evaluate(
                """async png => {
                    const bytes = Uint8Array.from(atob(png), c => c.charCodeAt(0));
                    const bitmap = await createImageBitmap(new Blob([bytes]));
                    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
                    canvas.getContext("2d").drawImage(bitmap, 0, 0);
                    return [...canvas.getContext("2d").getImageData(
                        0, 0, bitmap.width, bitmap.height).data];
                }""",
                base64.b64encode(png).decode(),
            )
        )
    finally:
        page.close()


def test_a_png_with_a_palette_keeps_few_colours_exactly_and_is_smaller(
    browser: Browser,
) -> None:
    page = browser.new_page(viewport={"width": 300, "height": 200})
    tool = browser.new_page()
    try:
        page.set_content(
            '<body style="margin:0;background:#fff"><div style="background:#0062ba;height:50px">'
            '</div><p style="color:#c01b1b;font-size:20px">Tilgang · 958 935 420</p></body>'
        )
        few = page.screenshot(clip={"x": 0, "y": 0, "width": 300, "height": 50})
        many = page.screenshot()
        few_with_palette = screenshots.with_palette(tool, few)
        many_with_palette = screenshots.with_palette(tool, many)
    finally:
        page.close()
        tool.close()

    assert few_with_palette[25] == many_with_palette[25] == 3  # a palette
    assert pixels(browser, few_with_palette) == pixels(browser, few)
    assert len(many_with_palette) < len(many)
    decoded = pixels(browser, many_with_palette)
    assert len(decoded) == len(pixels(browser, many)) == 300 * 200 * 4


def test_make_screenshots_runs_from_the_repository_alone(tmp_path: Path) -> None:
    """Its own database, secrets, portal and provider: nothing of the test's is lent to it."""
    result = subprocess.run(
        [
            sys.executable, "scripts/screenshots.py", "--output", str(tmp_path),
            "--only", "kommune-dashboard", "--languages", "en", "--widths", "375",
        ],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert [file.name for file in tmp_path.iterdir()] == ["kommune-dashboard-en-375.png"]
    assert png_size(tmp_path / "kommune-dashboard-en-375.png")[0] >= 375
