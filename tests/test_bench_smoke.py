"""The benchmark's code runs end to end on tiny numbers (its figures are `make bench`'s job)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.components import PROJECT_DIR, VENV_BIN

pytestmark = pytest.mark.integration

KEYS = [
    "onboarding_p50_s",
    "onboarding_p95_s",
    "onboarding_concurrent_p95_s",
    "orders_20_at_once_p95_s",
    "floor_p50_s",
    "overhead_ratio",
    "revocation_p50_s",
    "revocation_p95_s",
    "revocation_as_down_p95_s",
    "bulk_714_s",
    "api_p95_ms",
    "max_queries_per_request",
    "reconcile_30k_s",
    "push_one_1k_ms",
    "push_one_30k_ms",
    "web_peak_rss_mb",
    "worker_peak_rss_mb",
    "pages_p95_ms",
    "national_overview_read_p95_ms",
    "audit_export_100k_s",
    "audit_export_1m_s",
    "audit_export_100k_peak_mb",
    "audit_export_1m_peak_mb",
    "audit_verify_1m_s",
    "access_history_p95_ms",
    "data_access_ingest_1m_s",
    "data_access_lines_per_s",
    "load_p50_ms",
    "load_p95_ms",
    "load_rps",
]


def test_the_benchmark_runs_on_tiny_numbers_and_reports_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "bench.run", "--scale", "tiny", "--output", str(output)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(output.read_text())
    for key in KEYS:
        assert isinstance(figures[key], int | float), key
        assert figures[key] > 0, key
    assert figures["bulk_grants"] == 12  # two services for each of six kommuner
    assert figures["counts"]["kommuner"] == 357
    assert figures["audit_verify_events"] >= 200  # the chain held every seeded event
    assert figures["audit_export_rows"][1] >= 200
    assert figures["data_access_lines"] == 2_000  # every line written was loaded
    assert figures["load_errors"] == 0, figures["load_error_samples"]  # locust's users
    assert figures["load_requests"] > 0
    assert "onboarding_p95_s" in result.stdout  # the table
