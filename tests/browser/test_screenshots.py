"""`make screenshots` (scripts/screenshots.py): its list of pages is sound, it photographs them
logged in through the provider, and it runs on its own from nothing but the repository."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from scripts import screenshots
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
    slugs = [shot.slug for shot in screenshots.SHOTS]
    assert len(slugs) == len(set(slugs)), "two shots would write the same files"
    demo_people = {email for email, _role, _organisation in DEMO_LOGINS}
    for shot in screenshots.SHOTS:
        assert shot.person is None or shot.person in demo_people, shot
        assert screenshots.path_of(shot).startswith("/"), shot


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
        assert width >= int(file.stem.rsplit("-", 1)[1])
        assert height > 300


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
