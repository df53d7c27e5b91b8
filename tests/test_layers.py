"""Imports go one way: audit at the bottom, then tenants, notifications, orders, recertification,
then provisioning on top (README, "Layout"). A lower app that must reach a higher one does it by
name (a Celery task name, a dotted path in settings), never by importing it."""

from __future__ import annotations

import ast

import pytest

from tests.components import PROJECT_DIR

LAYERS = ["audit", "tenants", "notifications", "orders", "recertification", "provisioning"]


def imported_apps(app: str) -> dict[str, set[str]]:
    """Each module of ``app`` (migrations aside) and the project apps it imports, at any depth."""
    found: dict[str, set[str]] = {}
    for path in sorted((PROJECT_DIR / app).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(PROJECT_DIR))] = names & set(LAYERS)
    return found


@pytest.mark.parametrize("app", LAYERS[:-1])
def test_an_app_imports_no_app_above_it(app: str) -> None:
    above = set(LAYERS[LAYERS.index(app) + 1 :])

    upward = {module: apps & above for module, apps in imported_apps(app).items() if apps & above}

    assert upward == {}
