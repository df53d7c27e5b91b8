"""`make chaos`: fault injection with grants in flight, and nothing lost.

Starts the real stack on loopback as `make bench` does (bench/stack.py), but owning everything it
breaks: its own PostgreSQL database, its own redis-server, two Celery workers, the closer and beat,
gunicorn, the local authorization server, two HAProxy gateways (their files on a small tmpfs) and
the echo upstream. Then, one fault at a time and at last all together, it orders grants through
the API (half before the fault, half while it holds), revokes a share of them and of earlier ones,
injects the fault, ends it, and polls until every check of chaos/checks.py passes: each convergence
is timed from the fault's end. A prober sends requests for every revoked grant through every
gateway all along. Prints a table, writes var/chaos/results.json, exits non-zero if a check failed
or a convergence took longer than the limit.

    python -m chaos.run [--grants 500] [--clients 10] [--limit 60] [--output FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.stack import (
    ROOT,
    Processes,
    admin_url,
    database,
    free_port,
    manage,
    port_listens,
    production_env,
    start_beat,
    start_echo,
    start_haproxy,
    start_provider,
    start_web,
    start_worker,
    wait_port,
)
from tests.components import stop

GATEWAYS = ("gw-a", "gw-b")
FAULTS = (
    "worker_kill",
    "redis_down",
    "provider_down",
    "gateway_restart",
    "db_terminate",
    "disk_full",
    "all",
)
#: How long each fault holds (s); the others are instantaneous.
HOLD = {"redis_down": 10.0, "provider_down": 30.0, "disk_full": 10.0}
#: The faults injected once the workers run the grants' jobs; the others hit the grants waiting.
RESUME_FIRST = ("worker_kill", "gateway_restart", "db_terminate", "disk_full")


@dataclass
class Stack:
    """The processes of the run, by role, and how to break and mend each."""

    procs: Processes
    env: dict[str, str]
    run_dir: Path
    ports: dict[str, int]
    database: str
    haproxies: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    spared_pid: int = 0  # the harness's own database connection
    filler: Path | None = None
    timers: list[threading.Timer] = field(default_factory=list)
    nodenames: dict[int, str] = field(default_factory=dict)  # a worker's by process id
    #: Processes that ended by themselves (not by a fault), which the supervisor restarted.
    crashes: list[str] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)  # workers a fault killed, by process id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gateway_dir(self, name: str) -> Path:
        return self.run_dir / "gateways" / name

    def start_redis(self) -> None:
        port = self.ports["redis"]
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.run_dir)]
        self.procs.start("redis", args, self.env)
        wait_port(port, "redis-server")

    def start_worker(self) -> None:
        name = f"chaos{len(self.workers)}"
        self.workers.append(start_worker(self.procs, self.env, name))
        self.nodenames[self.workers[-1].pid] = f"{name}@{socket.gethostname()}"

    def _live_nodes(self) -> list[str]:
        return [self.nodenames[w.pid] for w in self.workers if w.poll() is None]

    def pause(self) -> None:
        """The workers stop taking jobs (Celery remote control): grants ordered now wait, in
        flight, for the fault."""
        from portal import celery_app

        nodes = self._live_nodes()
        replies = (
            celery_app.control.cancel_consumer("celery", destination=nodes, reply=True, timeout=10)
            or []
        )
        if len(replies) < len(nodes):
            raise SystemExit(f"cancel_consumer: {len(replies)} of {nodes} answered")

    def resume(self, timeout: float = 60) -> None:
        """The workers take jobs again; tried until each answers (the broker may be down)."""
        from portal import celery_app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nodes = self._live_nodes()
            try:
                replies = celery_app.control.add_consumer(
                    "celery", destination=nodes, reply=True, timeout=2
                )
            except Exception:  # noqa: BLE001 - the broker is down: try again
                time.sleep(0.5)
                continue
            if len(replies or []) >= len(nodes):
                return
            time.sleep(0.5)
        say(f"  resume: not every worker answered add_consumer within {timeout} s")

    def start_gateway(self, name: str) -> None:
        self.haproxies[name] = start_haproxy(
            self.procs, self.env, self.gateway_dir(name), self.ports[name]
        )

    def supervise(self, stopping: threading.Event) -> None:
        """As systemd would: a gateway or worker that ended by itself is started again, and
        the crash recorded (the faults stop and start theirs under the lock)."""
        while not stopping.wait(0.5):
            with self.lock:
                for name, proc in list(self.haproxies.items()):
                    if proc.poll() is not None:
                        self.crashes.append(crash(f"gateway {name}", proc))
                        self.start_gateway(name)
                for worker in [w for w in self.workers if w.poll() is not None]:
                    if worker.pid in self.killed:
                        continue
                    self.killed.add(worker.pid)
                    self.crashes.append(crash(self.nodenames[worker.pid], worker))
                    self.start_worker()

    # --- the faults: each returns how to end it -----------------------------------------------

    def worker_kill(self) -> Callable[[], None]:
        """SIGKILL a worker running a job (its child too), as a crash; its replacement starts as
        a supervisor would start it."""
        from portal import celery_app

        active = celery_app.control.inspect(destination=self._live_nodes(), timeout=1).active()
        busy = {
            node
            for node, tasks in (active or {}).items()
            if any(task.get("name") == "provisioning.run_job" for task in tasks)
        }
        with self.lock:
            live = [w for w in self.workers if w.poll() is None]
            victim = next((w for w in live if self.nodenames[w.pid] in busy), live[0])
            say(
                f"  SIGKILL {self.nodenames[victim.pid]} "
                f"({'running a job' if self.nodenames[victim.pid] in busy else 'idle'})"
            )
            self.killed.add(victim.pid)
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            self.start_worker()
        return lambda: None

    def redis_down(self) -> Callable[[], None]:
        """Stop the broker; it comes back empty (no persistence): every message it held is lost."""
        stop(self.procs.latest("redis"), signal.SIGTERM)
        return self.start_redis

    def _provider_start(self) -> None:
        start_provider(self.procs, self.env, self.ports["provider"])

    def provider_down(self) -> Callable[[], None]:
        stop(self.procs.latest("provider"), signal.SIGTERM)
        return self._provider_start

    def gateway_restart(self) -> Callable[[], None]:
        """Stop the second gateway and start it again from its files."""
        name = GATEWAYS[1]
        with self.lock:
            stop(self.haproxies[name], signal.SIGTERM)
            while port_listens(self.ports[name]):
                time.sleep(0.05)
            self.start_gateway(name)
        return lambda: None

    def db_terminate(self) -> Callable[[], None]:
        """pg_terminate_backend for every connection of the web and worker processes (all of the
        run's database but the harness's own)."""
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid() AND pid <> %s",
                (self.database, self.spared_pid),
            ).fetchall()
        print(f"  terminated {len(rows)} database connections", flush=True)
        return lambda: None

    def disk_full(self) -> Callable[[], None]:
        """Fill the tmpfs the gateways' map files are on; the filler goes at the end."""
        self.filler = self.run_dir / "gateways" / "filler"
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 1 << 16, 4096, 512):  # down to what is left
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)
        free = shutil.disk_usage(self.run_dir / "gateways").free
        print(f"  map files' disk full ({free} bytes free)", flush=True)

        def end() -> None:
            assert self.filler is not None
            self.filler.unlink()

        return end

    def all(self) -> Callable[[], None]:
        """Every fault at once; each ends after its own hold (the longest: what this returns)."""
        ends = {name: getattr(self, name)() for name in FAULTS[:-1]}
        longest = max(HOLD, key=lambda name: HOLD[name])
        for name, hold in HOLD.items():
            if name != longest:
                timer = threading.Timer(hold, ends.pop(name))
                timer.start()
                self.timers.append(timer)
        rest = list(ends.values())

        def end() -> None:
            for timer in self.timers:
                timer.join()
            for each in rest:
                each()

        return end


def crash(what: str, proc: subprocess.Popen[bytes]) -> str:
    text = f"{datetime.datetime.now(datetime.UTC):%H:%M:%S} {what} exited with {proc.returncode}"
    say(f"  CRASH: {text}; started again")
    return text


def say(text: str) -> None:
    print(f"{datetime.datetime.now(datetime.UTC):%H:%M:%S} {text}", flush=True)


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def unmount(path: Path) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False)


def run(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = ROOT / "var" / "chaos" / "run"
    unmount(run_dir / "gateways")  # a run that was stopped short may have left it
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "logs").mkdir(parents=True)
    mount_tmpfs(run_dir / "gateways", "4m")
    ports = {name: free_port() for name in ("provider", "echo", "web", "redis", *GATEWAYS)}
    name = os.environ.get("CHAOS_DATABASE", "tilgang_chaos_run")
    procs = Processes(run_dir / "logs")
    try:
        with database(name, drop_after=True) as database_url:
            issuer = f"http://127.0.0.1:{ports['provider']}"
            web = f"http://127.0.0.1:{ports['web']}"
            env = production_env(
                run_dir=run_dir,
                database_url=database_url,
                broker=f"redis://127.0.0.1:{ports['redis']}/0",
                issuer=issuer,
                web=web,
            )
            gateways = [
                {
                    "name": gw,
                    "dir": str(run_dir / "gateways" / gw),
                    "bind": f"127.0.0.1:{ports[gw]}",
                }
                for gw in GATEWAYS
            ]
            env.update(
                {
                    "GATEWAYS": json.dumps(gateways),
                    "GATEWAY_URL": f"http://{gateways[0]['bind']}",
                    "GATEWAY_UPSTREAM": f"127.0.0.1:{ports['echo']}",
                    "BENCH_WEB_URL": web,
                }
            )
            stack = Stack(procs, env, run_dir, ports, name)
            try:
                return _run(stack, args)
            finally:  # before the database is dropped
                procs.stop_all()
    finally:
        procs.stop_all()
        unmount(run_dir / "gateways")


def _run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    env, procs = stack.env, stack.procs
    started = time.monotonic()
    stack.start_redis()
    manage(env, "migrate", "-v0")
    manage(env, "write_provider_scopes")
    start_provider(procs, env, stack.ports["provider"])
    start_echo(procs, env, stack.ports["echo"])
    # This process reads and seeds the run's database: Django set up on the run's settings.
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    import django

    django.setup()
    from chaos import checks, harness

    manage(env, "gateway_config")
    for gw in GATEWAYS:
        stack.start_gateway(gw)
    for _ in range(2):
        stack.start_worker()
    start_worker(procs, env, "chaoscloser", queue="gateway_close", role="closer")
    start_beat(procs, env, stack.run_dir / "celerybeat-schedule")
    start_web(procs, env, stack.ports["web"])

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    world = harness.World(key, args.clients, env["BENCH_WEB_URL"])
    stack.spared_pid = world.backend_pid()
    prober = harness.Prober(
        world.vendor, {gw: f"http://127.0.0.1:{stack.ports[gw]}" for gw in GATEWAYS}
    )
    probing = threading.Thread(target=prober.run, daemon=True)
    probing.start()
    supervising = threading.Thread(target=stack.supervise, args=(prober.stopping,), daemon=True)
    supervising.start()
    say(f"stack up and seeded in {time.monotonic() - started:.0f} s")

    per_client = max(2, args.grants // args.clients)
    audit: dict[int, str] = {}

    def check() -> list[str]:
        nonlocal audit
        problems, events = world.problems(audit, prober)
        if not problems:
            audit = events
        return problems

    # A first wave without a fault: the stack converges at all, and revoked grants to probe.
    rows = []
    faults = ["baseline", *(args.faults or FAULTS)]
    extra = max(1, per_client // 10)
    for wave, fault in enumerate(faults):
        say(f"{fault}: ordering {per_client * args.clients} grants, the workers paused")
        stack.pause()
        first = world.order(wave, per_client + extra, 0, per_client)
        if fault in RESUME_FIRST:  # the fault hits the workers' running jobs
            stack.resume()
            world.wait_running()
        injected_at = datetime.datetime.now(datetime.UTC)
        in_flight = world.in_flight()
        t_inject = time.monotonic()
        end = getattr(stack, fault)() if fault != "baseline" else (lambda: None)
        hold = HOLD.get(fault, max(HOLD.values()) if fault == "all" else 0.0)
        ended: list[float] = []

        def ending(end: Callable[[], None] = end, ended: list[float] = ended) -> None:
            end()
            ended.append(time.monotonic())

        # The fault ends after its hold while orders and revocations go on (their calls retried,
        # as a vendor's system would); an instantaneous one is over at once, its damage in
        # flight. The workers take up the grants meanwhile (once the broker answers).
        timer = threading.Timer(hold, ending)
        timer.start()
        resuming = threading.Thread(target=stack.resume)
        resuming.start()
        second = world.order(wave, per_client + extra, per_client, per_client + extra)
        for order in (first, second):
            world.revoke(order, args.revoke_share, prober, earlier=5 if wave else 0)
        timer.join()
        resuming.join()
        t_end = ended[0]
        # Timed from when the final state is known: the fault over, every order and revocation
        # answered.
        t_from = max(t_end, time.monotonic())
        say(
            f"  {in_flight} grants in flight at the injection, {len(second.grants)} ordered "
            f"during the fault; fault ended after "
            f"{t_end - t_inject:.1f} s, the last call answered {t_from - t_inject:.1f} s after it"
        )
        converged, problems = harness.converge(check, since=t_from, limit=args.limit)
        errors = first.errors + second.errors
        row = {
            "fault": fault,
            "injected_at": injected_at.isoformat(timespec="seconds"),
            "duration_s": round(t_end - t_inject, 1),
            "converged_after_s": None if converged is None else round(converged, 1),
            "in_flight_at_injection": in_flight,
            # The longest a grant revoked in this wave still passed after the revoke answered,
            # before its close (a 2xx after the close is a failed check).
            "revocation_lag_s": round(
                checks.revocation_lag(
                    list(prober.passes), {**first.revoke_answered, **second.revoke_answered}
                ),
                2,
            ),
            "last_answer_after_s": round(t_from - t_inject, 1),
            "grants_ordered": len(first.grants) + len(second.grants),
            "ordered_during_fault": len(second.grants),
            "revoked": len(first.revoke_answered) + len(second.revoke_answered),
            "api_errors": errors,
            "problems": problems[:20],
            "problem_count": len(problems),
            "ok": converged is not None and not errors,
        }
        rows.append(row)
        say(
            f"  converged after {row['converged_after_s']} s; api errors: {len(errors)}; "
            f"problems: {len(problems)} {problems[:5]}"
        )
    prober.stopping.set()
    probing.join(timeout=10)
    lag = checks.revocation_lag(prober.passes, world.revoke_answered)
    return {
        "faults": rows,
        "limit_s": args.limit,
        "grants": len(world.expected),
        "crashes": stack.crashes,
        "probes_sent": prober.sent,
        "probe_passes": len(prober.passes),
        "revocation_lag_max_s": round(lag, 2),
        "total_s": round(time.monotonic() - started, 1),
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'fault':16} {'injected at':26} {'in flight':>9} {'duration (s)':>12} "
        f"{'converged after (s)':>20} {'revoked passed (s)':>19}  checks ok",
        "-" * 110,
    ]
    for row in results["faults"]:
        converged = "-" if row["converged_after_s"] is None else f"{row['converged_after_s']:.1f}"
        lines.append(
            f"{row['fault']:16} {row['injected_at']:26} {row['in_flight_at_injection']:9} "
            f"{row['duration_s']:12.1f} {converged:>20} {row['revocation_lag_s']:19.2f}  "
            f"{'yes' if row['ok'] else 'NO'}"
        )
    lines.append("")
    for text in results["crashes"]:
        lines.append(f"crashed (restarted by the run, as a supervisor would): {text}")
    lines.append(
        f"{results['grants']} grants; prober: {results['probes_sent']} requests for revoked "
        f"grants, {results['probe_passes']} passed before their close (longest "
        f"{results['revocation_lag_max_s']} s after the revoke answered); "
        f"total {results['total_s']} s"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grants", type=int, default=500, help="grants ordered per fault")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--revoke-share", type=float, default=0.2)
    parser.add_argument("--limit", type=float, default=60.0, help="seconds to converge")
    parser.add_argument("--faults", nargs="*", choices=FAULTS)
    parser.add_argument("--output", type=Path, default=ROOT / "var" / "chaos" / "results.json")
    args = parser.parse_args()
    results = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str))
    print(table(results))
    print(f"figures in {args.output}")
    failed = [row["fault"] for row in results["faults"] if not row["ok"]]
    if failed:
        for row in results["faults"]:
            for problem in row["problems"] + row["api_errors"][:5]:
                print(f"{row['fault']}: {problem}")
        sys.exit(f"chaos: {', '.join(failed)} did not converge within {args.limit:g} s cleanly")


if __name__ == "__main__":
    main()
