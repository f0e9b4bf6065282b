"""Console load benchmark on PostgreSQL: the dashboard, the queue and the statistics summary
under 50 concurrent users, on a month holding N incidents.

    python bench/console.py [--incidents 1000000] [--users 50] [--rounds 20] [--workers 2]
                            [--postgres URL] [--keep | --reuse NAME]

Creates a throwaway database on the server and fills it with `INSERT … SELECT
generate_series` (bench/stats.py's fill: one answered call per incident, four graded answers,
an escalation per unsatisfied call — half of them still open, so the queue holds about 2.5 %
of N — and tickets), all in the current month up to now. Then it starts `huifang serve`
(`--workers` processes) on a free port, logs in `--users` inspectors one after another (paced:
the login throttle refuses a burst), and lets each of them load `/dashboard`, `/queue` and
`/api/v1/stats/summary` in turn, `--rounds` times, all users at once (with `--think`, each
pausing about that many seconds between pages, as a person reading them would). It prints p50, p95 and
p99 of each page's response time as the clients saw it, and the machine's load.
Target: p99 ≤ 300 ms for every page with 50 users on 1,000,000 incidents.

Before the load, it refreshes the dashboard's precomputed months as the worker's sweep does
every minute (`stats.queries.refresh_snapshots`) and prints what that costs; with
`--no-snapshots` the pages compute every figure from the tables instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine, make_url, text
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stats import fill  # noqa: E402  (bench/stats.py, beside this file)

from huifang.db import create_db_engine, upgrade  # noqa: E402
from huifang.domain.users import hash_password  # noqa: E402
from huifang.stats.queries import refresh_snapshots  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
PAGES = ("/dashboard", "/queue", "/api/v1/stats/summary")
TARGET_MS = 300.0
PASSWORD = "bench-console-password"
HUIFANG = Path(sys.executable).with_name("huifang")


def month_so_far(now: datetime) -> tuple[str, float]:
    """The current month's first instant (in the deployment's zone) and the days since."""
    local = now.astimezone(TZ)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # stop an hour short of now: nothing in the future
    days = max((local - first - timedelta(hours=1)).total_seconds() / 86400, 0.01)
    return first.isoformat(), days


def add_users(engine: Engine, count: int) -> list[str]:
    names = [f"bench{index:03d}" for index in range(count)]
    password_hash = hash_password(PASSWORD)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, display_name, role, password_hash, phone, active,"
                " created_at) VALUES (:username, :username, 'inspector', :hash, '', true, now())"
            ),
            [{"username": name, "hash": password_hash} for name in names],
        )
    return names


def precompute(engine: Engine) -> None:
    """What the worker's sweep does about once a minute, timed."""
    started = time.perf_counter()
    with Session(engine) as session:
        months = refresh_snapshots(session, tz=TZ, now=datetime.now(TZ))
        session.commit()
    print(f"precomputed {len(months)} months in {time.perf_counter() - started:.1f} s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, workers: int, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "HUIFANG_DATABASE_URL": url,
        "HUIFANG_DATA_DIR": str(data_dir),
        "HUIFANG_SESSION_SECRET": secrets.token_urlsafe(32),
    }
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(HUIFANG), "serve", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"huifang serve did not start; see {data_dir / 'serve.log'}")


def stop(server: subprocess.Popen[bytes], data_dir: Path) -> None:
    """Ask the server to end as an operator would; kill it if it outstays 30 s."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print((data_dir / "serve.log").read_text()[-2000:], file=sys.stderr)
        server.kill()
        server.wait(timeout=10)


async def log_in(base: str, names: list[str]) -> list[httpx.AsyncClient]:
    """One client per user, logged in one after another; a refusal (429) waits as told."""
    clients = []
    for name in names:
        client = httpx.AsyncClient(
            base_url=base, timeout=60, headers={"Accept": "text/html"},
            # drop an idle connection before the server does (uvicorn: after 5 s), or a
            # user who paused would send on a socket being closed
            limits=httpx.Limits(keepalive_expiry=2),
        )  # fmt: skip
        while True:
            reply = await client.post("/login", data={"username": name, "password": PASSWORD})
            if reply.status_code != 429:
                break
            await asyncio.sleep(float(reply.headers.get("retry-after", "1")))
        if reply.status_code != 303:
            raise SystemExit(f"login of {name} failed: {reply.status_code}")
        clients.append(client)
    return clients


async def hammer(
    clients: list[httpx.AsyncClient], rounds: int, think: float
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {page: [] for page in PAGES}
    pauses = random.Random(17)

    async def user(client: httpx.AsyncClient, offset: int) -> None:
        for round_ in range(rounds):
            if think:  # a person reads the page before the next one, 0.5 to 1.5 times `think`
                await asyncio.sleep(think * (0.5 + pauses.random()))
            page = PAGES[(round_ + offset) % len(PAGES)]
            started = time.perf_counter()
            reply = await client.get(page)
            elapsed = (time.perf_counter() - started) * 1000
            if reply.status_code != 200:
                raise SystemExit(f"{page}: {reply.status_code} {reply.text[:200]}")
            timings[page].append(elapsed)

    await asyncio.gather(*(user(client, index) for index, client in enumerate(clients)))
    return timings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(timings: dict[str, list[float]], users: int, incidents: int, think: float) -> bool:
    pause = f", {think:g} s between pages" if think else ", no pause between pages"
    print(f"\n{users} concurrent users{pause}, {incidents:,} incidents this month")
    print(f"{'page':<26} {'requests':>8} {'p50':>9} {'p95':>9} {'p99':>9}")
    ok = True
    for page, values in timings.items():
        p99 = percentile(values, 0.99)
        ok = ok and p99 <= TARGET_MS
        flag = "" if p99 <= TARGET_MS else "  > target"
        print(
            f"{page:<26} {len(values):>8} {statistics.median(values):7.1f}ms"
            f" {percentile(values, 0.95):7.1f}ms {p99:7.1f}ms{flag}"
        )
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"every page p99 ≤ {TARGET_MS:.0f} ms: {'yes' if ok else 'NO'}")
    return ok


async def run(base: str, names: list[str], rounds: int, think: float) -> dict[str, list[float]]:
    clients = await log_in(base, names)
    try:
        for client in clients[:1]:  # one warm-up pass: first-request costs are not load
            for page in PAGES:
                await client.get(page)
        return await hammer(clients, rounds, think)
    finally:
        for client in clients:
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20, help="pages each user loads")
    parser.add_argument("--workers", type=int, default=2, help="huifang serve processes")
    parser.add_argument(
        "--think", type=float, default=0.0,
        help="seconds a user reads a page before the next (0: every user loads without pause)",
    )  # fmt: skip
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "HUIFANG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where a throwaway database may be created",
    )
    parser.add_argument(
        "--no-snapshots", action="store_true", help="no precomputed months: read the tables"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", default="", help="load a database kept by an earlier --keep run (no fill)"
    )
    args = parser.parse_args()

    name = args.reuse or f"huifang_bench_console_{uuid.uuid4().hex[:8]}"
    admin = create_db_engine(args.postgres, isolation_level="AUTOCOMMIT")
    if not args.reuse:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" SET random_page_cost = 1.1'))
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    engine = create_db_engine(url)
    server = None
    try:
        upgrade(engine)
        if not args.reuse:
            first_day, days = month_so_far(datetime.now(TZ))
            print(f"filling {name} with {args.incidents:,} incidents since {first_day}")
            fill(engine, args.incidents, first_day=first_day, days=days)
            names = add_users(engine, args.users)
        else:
            names = [f"bench{index:03d}" for index in range(args.users)]
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM stats_snapshots"))
        if not args.no_snapshots:
            precompute(engine)
        with tempfile.TemporaryDirectory() as data_dir:
            server, base = start_server(url, args.workers, Path(data_dir))
            try:
                timings = asyncio.run(run(base, names, args.rounds, args.think))
            except BaseException:
                print((Path(data_dir) / "serve.log").read_text()[-3000:], file=sys.stderr)
                raise
            finally:
                stop(server, Path(data_dir))
        report(timings, len(names), args.incidents, args.think)
    finally:
        engine.dispose()
        if not (args.keep or args.reuse):
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
