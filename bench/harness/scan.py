"""Scenario (h), scan to log in: how fast a waiting web poll is woken, and what a pending scan login costs.

Delay rows (`delay …`): for each sample the web page creates a login and starts `GET /api/v1/qr-login/{id}?wait=25`;
once the service's `wxlogin_qr_polls_waiting` gauge shows the poll waiting, the phone sends `POST …/scan` (then,
with a new waiting poll, `…/confirm`). Measured on the client's clock: from sending the phone's request to the
poll's answer, beside the phone request's own round trip (the delay a wake adds is the difference). SQLite with one
instance; PostgreSQL with two, the poll on the other instance than the phone (woken by LISTEN/NOTIFY), in a fresh
database dropped afterwards (when PostgreSQL is reachable on 127.0.0.1:5432).

Memory row: one wxlogin (SQLite), RSS (VmRSS from /proc) after a warm-up of create+poll cycles, after creating
10,000 pending scan logins, and while 10,000 long polls wait at once (one per login, each on its own connection,
the gauge read from /metrics until it shows them all); then the polls are cancelled (the client closes its sockets)
and RSS is read again, and the cycle is repeated once when the logins' 120 s are not up, to see whether RSS keeps
growing.

wxlogin on core 0, this client (and the simulator) on core 1, as the other scenarios pin them.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from .client import Conn
from .procs import LOAD_CORE, Server, Sim, cpu_seconds, http_json, start_wxlogin

DELAY_SQLITE = "delay: SQLite, 1 instance"
DELAY_POSTGRES = "delay: PostgreSQL, 2 instances (poll on the other)"
MEMORY = "memory: 10,000 pending scan logins"

PENDING = 10_000
# The server's connection cap (default 10,000) must hold 10,000 waiting polls beside /metrics and the creators.
MAX_CONNECTIONS = 12_000
WARM_CYCLES = 300
CREATE_CONCURRENCY = 16
CONNECT_CONCURRENCY = 256  # connections being opened at once (the listen backlog is finite)
WAIT_S = 25  # the poll's `wait`: its maximum (QR_WAIT_MAX)
QR_TTL_S = 120  # a scan login's life: every poll of the memory row must start within it
GAUGE = "wxlogin_qr_polls_waiting"
# Poll cycles (all polls waiting, then cancelled) on the same logins, as many as fit in their 120 s: whether RSS
# keeps growing from one to the next.
CYCLES = 4


def samples(quick: bool) -> int:
    return 30 if quick else 300


def postgres_up() -> bool:
    try:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0
    except OSError:
        return False


def rows(quick: bool) -> list[str]:
    """One round's steps: the PostgreSQL delay row only when PostgreSQL answers."""
    return [DELAY_SQLITE, *([DELAY_POSTGRES] if postgres_up() else []), MEMORY]


class _OnLoadCore:
    """Pins this (client) thread to the load core for the step, as wrk is pinned, and restores it after."""

    def __enter__(self):
        self.was = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {int(LOAD_CORE)})

    def __exit__(self, *exc):
        os.sched_setaffinity(0, self.was)


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                   check=True, capture_output=True, text=True)


def scan_step(cfg, label: str, rnd: int) -> dict:
    with _OnLoadCore():
        if label == MEMORY:
            return memory_step(cfg, rnd)
        return delay_step(cfg, label, rnd)


# ---- the delay: phone request → the web's waiting poll answered ------------------------------------------------------

class Http:
    """One keep-alive connection (http.client: the poll runs in a thread while the phone's request is sent)."""

    def __init__(self, target: str):
        host, port = target.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def call(self, method: str, path: str, body: object | None = None, token: str | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.conn.request(method, path, None if body is None else json.dumps(body), headers)
        res = self.conn.getresponse()
        raw = res.read()
        if res.status != 200:
            raise RuntimeError(f"{method} {path}: {res.status} {raw[:300]!r}")
        return json.loads(raw)["data"]

    def waiting(self) -> float:
        self.conn.request("GET", "/metrics")
        return gauge(self.conn.getresponse().read().decode())

    def close(self) -> None:
        self.conn.close()


def gauge(metrics: str) -> float:
    """`wxlogin_qr_polls_waiting` in a /metrics text (absent until the first poll waited: 0)."""
    for line in metrics.splitlines():
        if line.startswith(GAUGE + " "):
            return float(line.split()[1])
    return 0.0


def _sample(phone: Http, poller: Http, watch: Http, token: str, action: str, created: dict) -> tuple[float, float]:
    """(phone request sent → its answer, phone request sent → the waiting poll's answer), in ms."""
    before = watch.waiting()
    answer: dict = {}

    def poll() -> None:
        try:
            answer["data"] = poller.call("GET", f"/api/v1/qr-login/{created['id']}?wait={WAIT_S}",
                                         token=created["pollToken"])
        except Exception as e:  # noqa: BLE001 — reported below, in the step's thread
            answer["error"] = e
        answer["at"] = time.perf_counter()

    thread = threading.Thread(target=poll)
    thread.start()
    deadline = time.monotonic() + 10
    while watch.waiting() < before + 1:
        if "error" in answer or time.monotonic() > deadline:
            thread.join()
            raise RuntimeError(f"the poll never waited: {answer.get('error', answer.get('data'))}")
        time.sleep(0.001)
    sent = time.perf_counter()
    phone.call("POST", f"/api/v1/qr-login/{created['id']}/{action}", {}, token=token)
    replied = time.perf_counter()
    thread.join()
    if "error" in answer:
        raise RuntimeError(f"the poll failed after {action}: {answer['error']}")
    expected = {"scan": "scanned", "confirm": "confirmed"}[action]
    if answer["data"]["status"] != expected:
        raise RuntimeError(f"the poll answered {answer['data']} after {action}")
    return (replied - sent) * 1000, (answer["at"] - sent) * 1000


def _stats(rows: list[tuple[float, float]]) -> dict:
    own = sorted(r[0] for r in rows)
    woken = sorted(r[1] for r in rows)
    return {"samples": len(rows), "own_median_ms": statistics.median(own), "median_ms": statistics.median(woken),
            "p99_ms": woken[min(len(woken) - 1, int(len(woken) * 0.99))], "max_ms": woken[-1]}


def delay_step(cfg, label: str, rnd: int) -> dict:
    n = samples(cfg.quick)
    work = Path(tempfile.mkdtemp(prefix="step-", dir=cfg.workdir))
    sim = server = None
    db = None
    conns: list[Http] = []
    try:
        sim = Sim(work)
        if label == DELAY_POSTGRES:
            db = f"wxlogin_bench_{uuid.uuid4().hex[:12]}"
            _psql(f"CREATE DATABASE {db}")
            server = start_wxlogin(sim, work, instances=2, database_url=f"postgres://postgres@127.0.0.1:5432/{db}")
        else:
            server = start_wxlogin(sim, work)
        # The web page and the phone on the first instance, the poll (and the gauge it is watched by) on the last.
        web, phone = Http(server.targets[0]), Http(server.targets[0])
        poller, watch = Http(server.targets[-1]), Http(server.targets[-1])
        conns = [web, phone, poller, watch]
        user = sim.new_users(1)[0]
        token = web.call("POST", "/api/getPhone", {"loginCode": user["loginCode"],
                                                    "phoneCode": user["phoneCode"]})["token"]
        out: dict[str, list[tuple[float, float]]] = {"scan": [], "confirm": []}
        for _ in range(n):
            created = web.call("POST", "/api/v1/qr-login", {})
            for action in ("scan", "confirm"):
                out[action].append(_sample(phone, poller, watch, token, action, created))
    finally:
        for c in conns:
            c.close()
        if server:
            server.stop()
        if sim:
            sim.stop()
        shutil.rmtree(work, ignore_errors=True)
        if db:
            _psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    stats = {action: _stats(rows) for action, rows in out.items()}
    return {"scenario": "h", "round": rnd, "label": label, "impl": "wxlogin", "kind": "delay",
            "settings": server.settings, "stats": stats,
            "samples_ms": {a: [[round(x, 4) for x in r] for r in rows] for a, rows in out.items()},
            "log": ", ".join(f"{a} {s['median_ms']:.2f} ms (p99 {s['p99_ms']:.2f})" for a, s in stats.items())}


# ---- memory per pending scan login -----------------------------------------------------------------------------------

def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def _db_files_open(pid: int) -> int:
    """Descriptors the server holds on its SQLite database file: one per open connection of its pools."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(".db"):
                n += 1
        except OSError:
            continue
    return n


def _nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return 0


async def _get(conn: Conn, path: str, token: str | None = None) -> tuple[int, bytes]:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    conn.writer.write(f"GET {path} HTTP/1.1\r\nHost: {conn.host}\r\n{auth}\r\n".encode())
    await conn.writer.drain()
    return await conn.receive()


async def _create(conn: Conn) -> tuple[str, str]:
    status, raw = await conn.call("/api/v1/qr-login", b"{}")
    if status != 200:
        raise RuntimeError(f"POST /api/v1/qr-login: {status} {raw[:300]!r}")
    data = json.loads(raw)["data"]
    return data["id"], data["pollToken"]


async def _create_many(target: str, n: int, poll_too: bool) -> list[tuple[str, str]]:
    """n scan logins over CREATE_CONCURRENCY keep-alive connections; with poll_too, each polled once (wait=0)."""
    out: list[tuple[str, str]] = []
    left = iter(range(n))

    async def worker() -> None:
        conn = await Conn.open(target)
        try:
            for _ in left:
                login = await _create(conn)
                if poll_too:
                    status, raw = await _get(conn, f"/api/v1/qr-login/{login[0]}?wait=0", login[1])
                    if status != 200:
                        raise RuntimeError(f"poll: {status} {raw[:300]!r}")
                out.append(login)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))
    return out


async def _metrics_gauge(conn: Conn) -> float:
    status, raw = await _get(conn, "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics: {status}")
    return gauge(raw.decode())


async def _hold_polls(target: str, logins: list[tuple[str, str]], pid: int, timeout: float) -> dict:
    """One long poll per login, each on its own connection, re-polled when its wait ends (as a web page does);
    RSS read once the gauge shows them all waiting; then every connection is closed (the polls cancelled) and the
    gauge is watched until it is back to 0."""
    metrics = await Conn.open(target)
    opening = asyncio.Semaphore(CONNECT_CONCURRENCY)
    repolls = 0
    others: dict[str, int] = {}
    errors: list[str] = []
    conns: list[Conn] = []

    async def one(login_id: str, token: str) -> None:
        nonlocal repolls
        async with opening:
            conn = await Conn.open(target)
        conns.append(conn)
        try:
            while True:
                status, raw = await _get(conn, f"/api/v1/qr-login/{login_id}?wait={WAIT_S}", token)
                state = json.loads(raw).get("data", {}).get("status") if status == 200 else f"HTTP {status}"
                if state != "pending":
                    others[state] = others.get(state, 0) + 1
                    return
                repolls += 1  # the wait ran out before the measurement: poll again
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
            errors.append(str(e)[:200])

    t0 = time.monotonic()
    tasks = [asyncio.create_task(one(i, t)) for i, t in logins]
    waiting, reached = 0.0, None
    while time.monotonic() - t0 < timeout:
        waiting = await _metrics_gauge(metrics)
        if waiting >= len(logins):
            reached = time.monotonic() - t0
            break
        if errors or others:
            break
        await asyncio.sleep(0.05)  # polling /metrics, not a synchronisation: the condition is the gauge
    out = {"waiting": waiting, "all_waiting_after_s": reached, "rss_kib": _status_kib(pid, "VmRSS"),
           "db_files_open": _db_files_open(pid), "threads": _status_kib(pid, "Threads"),
           "connections": len(conns)}
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in conns:
        c.writer.transport.abort()
    out.update(repolls=repolls, other_answers=others, errors=len(errors), first_error=errors[0] if errors else "")
    t1 = time.monotonic()
    zero_after = None
    while time.monotonic() - t1 < WAIT_S + 15:
        if await _metrics_gauge(metrics) == 0:
            zero_after = time.monotonic() - t1
            break
        await asyncio.sleep(0.05)
    metrics.close()
    out["gauge_zero_after_cancel_s"] = zero_after
    out["rss_after_kib"] = _status_kib(pid, "VmRSS")
    return out


def memory_step(cfg, rnd: int) -> dict:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < PENDING + 500:
        raise RuntimeError(f"RLIMIT_NOFILE is {soft}: {PENDING} client sockets need more (raise the hard limit)")
    work = Path(tempfile.mkdtemp(prefix="step-", dir=cfg.workdir))
    sim = server = None
    try:
        sim = Sim(work)
        # The simulator answers getwxacodeunlimit 5,000 times a minute per app, as WeChat does; 10,000 codes
        # within a login's 120 s need more (what is measured here is the server's memory, not WeChat's quota).
        limits = http_json("GET", sim.base + "/sandbox/v1/limits")
        http_json("PUT", sim.base + "/sandbox/v1/limits", {**limits, "wxacodePerAppPerMinute": 1_000_000})
        server = start_wxlogin(sim, work, extra_args=("--max-connections", str(MAX_CONNECTIONS)))
        pid = server.procs[0].pid
        target = server.targets[0]
        asyncio.run(_create_many(target, WARM_CYCLES, poll_too=True))
        rss = {"warm": _status_kib(pid, "VmRSS")}
        cpu0, sim0, t0 = server.cpu(), sim.cpu(), time.monotonic()
        logins = asyncio.run(_create_many(target, PENDING, poll_too=False))
        cpu1, sim1, created_s = server.cpu(), sim.cpu(), time.monotonic() - t0
        rss["pending"] = _status_kib(pid, "VmRSS")
        # The logins live in the database (its file, and SQLite's page cache in the server's memory).
        db_bytes = sum(f.stat().st_size for f in work.glob("wxlogin-0-*/wxlogin.db*"))
        db_files_pending = _db_files_open(pid)
        cycles = []
        while len(cycles) < CYCLES:
            # Every poll must start and wait before the logins expire (120 s after creation); a second cycle only
            # when the first one's duration still fits.
            elapsed = time.monotonic() - t0
            budget = QR_TTL_S - elapsed - 5
            if cycles and budget < 1.5 * cycles[-1]["duration_s"]:
                break
            c0 = time.monotonic()
            cycle = asyncio.run(_hold_polls(target, logins, pid, timeout=min(budget, 90)))
            cycle["duration_s"] = time.monotonic() - c0
            cycle["logins_age_s"] = time.monotonic() - t0
            cycles.append(cycle)
            if cycle["all_waiting_after_s"] is None:
                raise RuntimeError(f"the gauge showed {cycle['waiting']:.0f} of {PENDING} polls waiting "
                                   f"(other answers {cycle['other_answers']}, errors {cycle['errors']}: "
                                   f"{cycle['first_error']}):\n{server.procs[0].log.read_text()[-2000:]}")
        peak = _status_kib(pid, "VmHWM")
        nofile = _nofile(pid)
    finally:
        if server:
            server.stop()
        if sim:
            sim.stop()
        shutil.rmtree(work, ignore_errors=True)
    rss["waiting"] = cycles[0]["rss_kib"]
    rss["after"] = cycles[0]["rss_after_kib"]
    per = lambda a, b: (rss[a] - rss[b]) * 1024 / PENDING  # noqa: E731
    return {"scenario": "h", "round": rnd, "label": MEMORY, "impl": "wxlogin", "kind": "memory",
            "settings": {**server.settings, "max_connections": MAX_CONNECTIONS, "server_nofile": nofile},
            "pending": PENDING, "warm_cycles": WARM_CYCLES, "rss_kib": rss, "peak_rss_kib": peak,
            "bytes_per_pending": per("pending", "warm"), "bytes_per_pending_waiting": per("waiting", "warm"),
            "bytes_per_waiting_poll": per("waiting", "pending"),
            "create": {"n": PENDING, "wall_s": created_s, "server_cpu_s": cpu1 - cpu0,
                       "server_cpu_us_per_login": (cpu1 - cpu0) / PENDING * 1e6, "sim_cpu_s": sim1 - sim0,
                       "concurrency": CREATE_CONCURRENCY},
            "db_bytes": db_bytes, "db_files_open_pending": db_files_pending, "cycles": cycles,
            "log": f"RSS warm {rss['warm'] / 1024:.1f} MiB, {PENDING:,} pending {rss['pending'] / 1024:.1f} MiB, "
                   f"{PENDING:,} polls waiting {rss['waiting'] / 1024:.1f} MiB, after {rss['after'] / 1024:.1f} MiB"}


# ---- medians over rounds (rendered by report.h_markdown) -------------------------------------------------------------

def summary(records: list[dict]) -> dict:
    """Per row, over rounds: the delay's medians and p99 (medians of the rounds'), max (the worst round); the memory
    figures' medians (RSS per cycle: the worst round)."""
    out: dict[str, dict] = {}
    by: dict[str, list[dict]] = {}
    for r in records:
        if r["scenario"] == "h":
            by.setdefault(r["label"], []).append(r)
    med = lambda rs, f: statistics.median(f(r) for r in rs)  # noqa: E731
    for label, rs in by.items():
        if rs[0]["kind"] == "delay":
            out[f"h:{label}"] = {"kind": "delay", "rounds": len(rs), "actions": {
                a: {"samples": sum(r["stats"][a]["samples"] for r in rs),
                    "own_median_ms": med(rs, lambda r: r["stats"][a]["own_median_ms"]),
                    "median_ms": med(rs, lambda r: r["stats"][a]["median_ms"]),
                    "p99_ms": med(rs, lambda r: r["stats"][a]["p99_ms"]),
                    "max_ms": max(r["stats"][a]["max_ms"] for r in rs)}
                for a in ("scan", "confirm")}}
            continue
        n_cycles = min(len(r["cycles"]) for r in rs)
        out[f"h:{label}"] = {
            "kind": "memory", "rounds": len(rs), "pending": rs[0]["pending"], "warm_cycles": rs[0]["warm_cycles"],
            "rss_mib": {k: med(rs, lambda r: r["rss_kib"][k]) / 1024 for k in ("warm", "pending", "waiting", "after")},
            "bytes_per_pending": med(rs, lambda r: r["bytes_per_pending"]),
            "bytes_per_pending_waiting": med(rs, lambda r: r["bytes_per_pending_waiting"]),
            "bytes_per_waiting_poll": med(rs, lambda r: r["bytes_per_waiting_poll"]),
            "db_mib": med(rs, lambda r: r["db_bytes"]) / 2**20,
            "create_wall_s": med(rs, lambda r: r["create"]["wall_s"]),
            "create_cpu_s": med(rs, lambda r: r["create"]["server_cpu_s"]),
            "create_cpu_us": med(rs, lambda r: r["create"]["server_cpu_us_per_login"]),
            "cycles_rss_mib": [[max(r["cycles"][i]["rss_kib"] for r in rs) / 1024,
                                max(r["cycles"][i]["rss_after_kib"] for r in rs) / 1024] for i in range(n_cycles)],
            "all_waiting_after_s": max(c["all_waiting_after_s"] for r in rs for c in r["cycles"]),
            "gauge": min(c["waiting"] for r in rs for c in r["cycles"]),
            "repolls": sum(c["repolls"] for r in rs for c in r["cycles"]),
            "zero_after_cancel_s": max((c["gauge_zero_after_cancel_s"] for r in rs for c in r["cycles"]),
                                       key=lambda v: float("inf") if v is None else v),
            "db_files_open": max(c["db_files_open"] for r in rs for c in r["cycles"]),
            "db_files_open_pending": max(r["db_files_open_pending"] for r in rs),
            "logins_age_s": max(c["logins_age_s"] for r in rs for c in r["cycles"]),
            "peak_rss_mib": max(r["peak_rss_kib"] for r in rs) / 1024,
            "server_nofile": rs[0]["settings"]["server_nofile"],
        }
    return out
