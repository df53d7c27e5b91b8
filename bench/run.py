"""`make bench`: start the real stack on loopback (a fresh PostgreSQL database, Redis, two Celery
worker processes, gunicorn, the local authorization server, HAProxy and the echo upstream), run
the driver, read the processes' peak memory, and print the figures against their targets.

    python -m bench.run --scale full|quick|tiny [--output var/bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.stack import (
    BIN,
    ROOT,
    Processes,
    database,
    free_port,
    manage,
    production_env,
    start_echo,
    start_haproxy,
    start_provider,
    start_web,
    start_worker,
)

#: The result keys, fixed (README), with their targets (None: reported, no target).
TARGETS: dict[str, tuple[str, float | None]] = {
    "onboarding_p50_s": ("<=", None),
    "onboarding_p95_s": ("<=", 0.100),
    "onboarding_concurrent_p95_s": ("<=", None),
    # The order API call with 20 at once for one client (issue 14: it was 1.5 s).
    "orders_20_at_once_p95_s": ("<=", 0.300),
    "floor_p50_s": ("<=", None),
    "overhead_ratio": ("<=", 4.0),  # 2.0 withdrawn: the stack bottoms out near 3.5 on two cores
    "revocation_p50_s": ("<=", None),
    "revocation_p95_s": ("<=", 0.050),
    "revocation_as_down_p95_s": ("<=", 1.0),
    "bulk_714_s": ("<=", 30.0),
    "api_p95_ms": ("<=", 100.0),
    "max_queries_per_request": ("<=", None),
    "pages_p95_ms": ("<=", 150.0),
    "page_query_growth": ("<=", 0),
    "national_overview_read_p95_ms": ("<=", None),
    "access_history_p95_ms": ("<=", 100.0),
    "reconcile_30k_s": ("<=", 10.0),
    "push_one_1k_ms": ("<=", None),
    "push_one_30k_ms": ("<=", None),
    "web_peak_rss_mb": ("<=", None),
    "worker_peak_rss_mb": ("<=", None),
    "audit_export_100k_s": ("<=", None),
    "audit_export_1m_s": ("<=", None),
    "audit_export_100k_peak_mb": ("<=", None),
    "audit_export_1m_peak_mb": ("<=", None),  # under twice the 100k export's (table())
    "audit_verify_1m_s": ("<=", None),
    # No target was set: the figures are reported (docs/benchmarks.md).
    "data_access_ingest_1m_s": ("<=", None),
    "data_access_lines_per_s": (">=", None),
    # Load (issue 14): simulated users mixing pages, API reads and orders. Zero errors, or
    # `make bench` fails; the timings are reported.
    "load_errors": ("<=", 0),
    "load_p50_ms": ("<=", None),
    "load_p95_ms": ("<=", None),
    "load_rps": (">=", None),
}


def run(scale: str, output: Path) -> dict[str, Any]:
    run_dir = ROOT / "var" / "bench" / f"run-{scale}"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "logs").mkdir(parents=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = run_dir / "vendor-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ports = {name: free_port() for name in ("provider", "gateway", "echo", "web")}
    broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/2")
    redis.Redis.from_url(broker).flushdb()

    with database(os.environ.get("BENCH_DATABASE", f"tilgang_bench_{scale}")) as database_url:
        issuer = f"http://127.0.0.1:{ports['provider']}"
        web = f"http://127.0.0.1:{ports['web']}"
        env = production_env(
            run_dir=run_dir, database_url=database_url, broker=broker, issuer=issuer, web=web
        )
        env.update(
            {
                "GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}",
                "GATEWAY_BIND": f"127.0.0.1:{ports['gateway']}",
                "GATEWAY_UPSTREAM": f"127.0.0.1:{ports['echo']}",
                "GATEWAY_DIR": str(run_dir / "gateway"),
                "BENCH_WEB_URL": web,
            }
        )
        procs = Processes(run_dir / "logs")
        python = str(BIN / "python")
        try:
            manage(env, "migrate", "-v0")
            manage(env, "write_provider_scopes")
            provider = start_provider(procs, env, ports["provider"])
            # The driver freezes it (SIGSTOP) to measure revocation with the server stuck.
            env["BENCH_PROVIDER_PID"] = str(provider.pid)
            start_echo(procs, env, ports["echo"])
            manage(env, "gateway_config")
            start_haproxy(procs, env, run_dir / "gateway", ports["gateway"])
            for n in (1, 2):  # two worker processes
                start_worker(procs, env, f"bench{n}")
            # Revocations' gateway closes have a worker of their own, as in the Procfile.
            start_worker(procs, env, "benchcloser", queue="gateway_close", role="closer")
            start_web(procs, env, ports["web"])
            driver_out = run_dir / "driver.json"
            subprocess.run(
                [
                    python,
                    "-m",
                    "bench.driver",
                    "--scale",
                    scale,
                    "--output",
                    str(driver_out),
                    "--key",
                    str(key_file),
                ],
                cwd=ROOT,
                env=env,
                check=True,
            )
            results: dict[str, Any] = json.loads(driver_out.read_text())
            results["web_peak_rss_mb"] = procs.peak_rss_mb("web")
            results["worker_peak_rss_mb"] = procs.peak_rss_mb("worker")
        finally:
            procs.stop_all()
    results["machine"] = machine()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str))
    return results


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024**2, 1),
        "python_loop_ms": python_loop_ms(),
    }


def python_loop_ms() -> float:
    """Milliseconds for a million turns of a plain Python loop (the best of five): machines of
    one kind differ, and so do their runs, so a run's figures come with the speed it ran at."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def table(results: dict[str, Any]) -> str:
    lines = [f"{'figure':30} {'value':>12} {'target':>12}  ok", "-" * 62]
    for key, (op, target) in TARGETS.items():
        value = results[key]
        if value is None:  # not measured on this run
            lines.append(f"{key:30} {'-':>12} {'-':>12}  -")
            continue
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        if key == "push_one_30k_ms":
            ratio = value / results["push_one_1k_ms"] if results["push_one_1k_ms"] else 0
            target_text, ok = "1.5x of 1k", ratio <= 1.5
        elif key == "audit_export_1m_peak_mb":
            target_text, ok = "2x of 100k", value < 2 * results["audit_export_100k_peak_mb"]
        elif target is None:
            target_text, ok = "-", True
        else:
            target_text, ok = f"{op} {target:g}", value <= target
        lines.append(f"{key:30} {shown:>12} {target_text:>12}  {'yes' if ok else 'NO'}")
    lines.append("")
    lines.append(f"{'API (ms, in-process)':50} {'p50':>8} {'p95':>8} {'queries':>8}")
    for label, figures in results["api"].items():
        lines.append(
            f"{label:50} {figures['p50']:8.1f} {figures['p95']:8.1f} {figures['queries']:8}"
        )
    lines.append("")
    lines.append(f"{'Pages (ms, in-process)':50} {'p50':>8} {'p95':>8} {'queries':>8}")
    for label, figures in results["pages"].items():
        lines.append(
            f"{label:50} {figures['p50']:8.1f} {figures['p95']:8.1f} {figures['queries']:8}"
        )
    lines.append("")
    lines.append(f"floor, p50 ms by part: {results['floor_parts_p50_ms']}")
    lines.append(f"onboarding, p50 ms by part: {results['onboarding_parts_p50_ms']}")
    lines.append(
        f"20 at once for one client, p50 ms by part: "
        f"{results['onboarding_concurrent_parts_p50_ms']}"
    )
    lines.append(
        "20 orders at once, the database's sessions by wait (20 ms samples): "
        f"{results['orders_20_at_once_waits']}"
    )
    lines.append(f"revocation, p50 ms by part: {results['revocation_parts_p50_ms']}")
    lines.append(
        "one grant removed at the gateway (ms, median): "
        f"{results['push_remove_1k_ms']:.3f} at 1k, {results['push_remove_30k_ms']:.3f} at 30k"
    )
    lines.append(
        f"load: {results['load_users']} users for {results['load_seconds']} s, "
        f"{results['load_requests']} requests; errors: {results['load_error_samples']}"
    )
    lines.append(f"seeding (s): {results['seeding_s']}")
    lines.append(f"counts: {results['counts']}; machine: {results['machine']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=["full", "quick", "tiny"], default="full")
    parser.add_argument("--output", type=Path, default=ROOT / "var" / "bench" / "results.json")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args.scale, args.output)
    print(table(results))
    elapsed = time.perf_counter() - started
    print(f"\n{args.scale} benchmark in {elapsed:.0f} s; figures in {args.output}")
    if results["load_errors"]:  # the one figure that fails the run (issue 14: zero errors)
        raise SystemExit(f"load: {results['load_errors']} requests failed")


if __name__ == "__main__":
    main()
