"""Every message a person can see is translated into bokmål.

The strings are extracted from the code as it is (``makemessages``, which runs xgettext, into a
copy of the project), so a string marked for translation but never added to ``django.po`` is found
as well as one left untranslated or fuzzy there.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.components import manage

pytestmark = pytest.mark.django_db

PROJECT_DIR = Path(settings.BASE_DIR)
#: Not the portal's code: tools, tests, benchmarks, installed packages, runtime files.
NOT_SOURCE = (".*", "var", "node_modules", "staticfiles", "tests", "bench", "docs", "__pycache__")


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    fuzzy: bool = False
    obsolete: bool = False


def _unquote(line: str) -> str:
    text = line[line.index('"') + 1 : line.rindex('"')]
    return re.sub(r'\\(["\\nt])', lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), text)


def po_entries(text: str) -> list[Entry]:
    """The entries of a PO file (enough of the format for what makemessages writes)."""
    entries: list[Entry] = []
    entry = Entry()
    target: tuple[str, int] = ("", 0)
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if target[0]:
                entries.append(entry)
            entry, target = Entry(), ("", 0)
        elif line.startswith("#~"):
            entry.obsolete = True
        elif line.startswith("#,"):
            entry.fuzzy = entry.fuzzy or "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith("msgid_plural"):
            entry.msgid_plural, target = _unquote(line), ("msgid_plural", 0)
        elif line.startswith("msgid"):
            entry.msgid, target = _unquote(line), ("msgid", 0)
        elif line.startswith("msgstr"):
            index = int(line[7 : line.index("]")]) if line.startswith("msgstr[") else 0
            entry.msgstr[index], target = _unquote(line), ("msgstr", index)
        elif line.startswith('"'):
            kind, index = target
            if kind == "msgid":
                entry.msgid += _unquote(line)
            elif kind == "msgid_plural":
                entry.msgid_plural = (entry.msgid_plural or "") + _unquote(line)
            elif kind == "msgstr":
                entry.msgstr[index] += _unquote(line)
    return entries


def untranslated(entries: list[Entry]) -> list[str]:
    """The msgids without a whole bokmål translation (fuzzy ones count as none)."""
    return [
        ("fuzzy: " if entry.fuzzy else "") + entry.msgid
        for entry in entries
        if entry.msgid
        and not entry.obsolete
        and (entry.fuzzy or not entry.msgstr or not all(entry.msgstr.values()))
    ]


def test_the_po_reader_finds_untranslated_fuzzy_and_plural_gaps() -> None:
    text = (
        'msgid ""\nmsgstr ""\n"Language: nb\\n"\n\n'
        'msgid "Done"\nmsgstr "Ferdig"\n\n'
        'msgid ""\n"Long "\n"one"\nmsgstr ""\n\n'
        '#, fuzzy, python-format\nmsgid "Guess"\nmsgstr "Gjett"\n\n'
        'msgid "a \\"file\\""\nmsgid_plural "files"\nmsgstr[0] "fil"\nmsgstr[1] ""\n\n'
        '#~ msgid "Gone"\n#~ msgstr ""\n'
    )
    assert untranslated(po_entries(text)) == ["Long one", "fuzzy: Guess", 'a "file"']


def test_every_string_marked_for_translation_has_a_bokmal_translation(tmp_path: Path) -> None:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns(*NOT_SOURCE), symlinks=True)
    for link in [p for p in copy.iterdir() if p.is_symlink()]:  # .venv, node_modules
        link.unlink()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "TILGANG_VAR_DIR": str(tmp_path / "var"),
    }
    result = manage("makemessages", "-l", "nb", "--no-obsolete", "-v", "0", env=env, cwd=copy)
    assert result.returncode == 0, result.stderr

    po = (copy / "locale" / "nb" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    missing = untranslated(po_entries(po))

    assert not missing, (
        f"{len(missing)} msgid(s) without a bokmål msgstr in locale/nb/LC_MESSAGES/django.po "
        "(run `manage.py makemessages -l nb`, translate them, then compilemessages):\n"
        + "\n".join(f"  {msgid!r}" for msgid in missing)
    )


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    [
        # IsNhnOperator's message
        ("kommune_admin", "post", "/api/v1/organizations/", {}),
        # IsNhnStaff's message
        ("kommune_admin", "get", "/api/v1/provisioning-jobs/", None),
        # a serializer's own field error
        ("vendor_admin", "post", "/api/v1/clients/", {"name": "x", "jwks": {"keys": []}}),
        ("kommune_admin", "post", "/api/v1/delegations/", {"kommune": "x", "vendor": "y"}),
        ("nhn_auditor", "get", "/api/v1/provisioning-jobs/?client=nope", None),
    ],
)
def test_api_errors_answer_in_bokmal(
    people: dict[str, object], who: str, method: str, path: str, body: object
) -> None:
    """Messages written in the code, not only Django's and DRF's own, follow the language."""
    client = APIClient()
    client.force_authenticate(people[who])

    norwegian = getattr(client, method)(path, body, format="json", HTTP_ACCEPT_LANGUAGE="nb")
    english = getattr(client, method)(path, body, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert norwegian.status_code in (400, 403), norwegian.json()
    assert norwegian.json() != english.json(), norwegian.json()
