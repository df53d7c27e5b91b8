"""How big a benchmark run is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    kommuner: int
    vendors: int
    clients: int
    grants: int
    audit_events: int
    onboardings: int  # one at a time
    concurrent: int  # in all, `at_once` at a time
    at_once: int
    revocations: int
    bulk_kommuner: int  # the bulk order: two services for this many kommuner
    api_samples: int
    push_samples: int
    load_users: int  # simulated users (locust), for load_seconds
    load_seconds: int


SCALES = {
    "full": Scale(
        "full", 357, 60, 1000, 30_000, 1_000_000, 200, 200, 20, 100, 357, 20, 200, 50, 60
    ),
    "quick": Scale("quick", 357, 10, 100, 3_000, 50_000, 40, 40, 20, 20, 357, 8, 100, 10, 10),
    # The smoke test of `make test`: every step runs, on tiny numbers.
    "tiny": Scale("tiny", 357, 2, 4, 40, 200, 3, 4, 2, 2, 6, 2, 5, 4, 5),
}
