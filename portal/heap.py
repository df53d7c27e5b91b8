"""What a long-running process loads at start-up stays out of the garbage collector's way."""

from __future__ import annotations

import gc


def startup_objects_freeze() -> None:
    """Collect the start-up's garbage, then move every object alive now (modules, classes, the app
    registry, the URLconf and its views) to the permanent generation.

    A full collection scans every tracked object; in a web or worker process those are mostly
    what start-up loaded, and on the benchmark machine each full collection took 50-130 ms inside
    whichever request or job it fell in (docs/benchmarks.md). Frozen, they are no longer scanned:
    collections look at what requests and jobs leave behind.
    """
    gc.collect()
    gc.freeze()
