"""Scenario (g): wxlogin on a database of a real deployment's size. 1,000,000 accounts, each with its identity, its
`account_created` audit row and 3 sessions (3,000,000; a third of them expired), made by the `seed_accounts`
example (rows shaped as the login path writes them, phones sealed with the data key), loaded once per run into a
template (a SQLite data dir; a PostgreSQL database), copied for every step.

Rows, on SQLite and on PostgreSQL: new-user logins (`/api/getPhone`) and known-user logins (`/api/v1/login`) as in
(a), on an empty database and on the seeded one; and the purge: the seeded database, wxlogin started with
`--purge-interval` so that its first purge (a million expired sessions) starts during a login measurement, whose
throughput and latency say whether logins stall while it runs. The database's size per account is measured on the
templates.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from . import scenarios
from .load import write_bodies, wrk
from .procs import (APPID, DATA_KEY, ROOT, SECRET, WXLOGIN, Sim, core_busy, core_times, cpu_seconds, pids_named,
                    start_wxlogin)

ACCOUNTS, QUICK_ACCOUNTS = 1_000_000, 20_000
SESSIONS_PER_ACCOUNT = 3
EXPIRED_SHARE = 1 / 3
PG = "postgres://postgres@127.0.0.1:5432"

# label -> (backend, database, flow label in scenarios.FLOWS or "purge")
ROWS: dict[str, tuple[str, str, str]] = {}
for _backend in ("sqlite", "postgres"):
    for _db in ("empty", "1M accounts"):
        ROWS[f"{_backend}, {_db}: new user (getPhone)"] = (_backend, _db, "wxlogin getPhone verify")
        ROWS[f"{_backend}, {_db}: known user (v1/login)"] = (_backend, _db, "wxlogin v1/login known user")
    ROWS[f"{_backend}, 1M accounts: new user (getPhone) during the purge"] = (_backend, "1M accounts", "purge")

# What the templates hold and measured, built on first use in a run.
_templates: dict[str, dict] = {}


def seed_binary() -> Path:
    """Built by bench/run's prepare (`cargo build --release --example seed_accounts`), beside the wxlogin it built."""
    return (ROOT / os.environ.get("CARGO_TARGET_DIR", "target")) / "release" / "examples" / "seed_accounts"


def rows(quick: bool) -> list[str]:
    return list(ROWS)


def _psql(sql: str, db: str = "postgres") -> str:
    out = subprocess.run(["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _migrate(args: list[str]) -> None:
    """The schema, as wxlogin makes it: any command that opens the store runs the migrations."""
    env = {"WX_APPID": APPID, "WX_SECRET": SECRET, "WXLOGIN_DATA_KEY": DATA_KEY, "RUST_LOG": "warn"}
    subprocess.run([str(WXLOGIN), "keys", "list", *args], check=True, capture_output=True,
                   env={**os.environ, **env})


def _seed_files(cfg) -> dict:
    if "files" in _templates:
        return _templates["files"]
    n = QUICK_ACCOUNTS if cfg.quick else ACCOUNTS
    out = Path(tempfile.mkdtemp(prefix="g-seed-", dir=cfg.workdir))
    t0 = time.monotonic()
    done = subprocess.run([str(seed_binary()), "--appid", APPID, "--accounts", str(n), "--sessions-per-account",
                           str(SESSIONS_PER_ACCOUNT), "--expired-share", f"{EXPIRED_SHARE:.6f}", "--out", str(out)],
                          check=True, capture_output=True, text=True, env={**os.environ, "WXLOGIN_DATA_KEY": DATA_KEY})
    files = {"dir": out, "counts": json.loads(done.stdout), "generate_s": time.monotonic() - t0}
    _templates["files"] = files
    return files


# COPY text format → Python values, per column: i integer, t text, b bytea (\\x…), every one may be \N.
COLUMNS = {
    "accounts": ("id, unionid, phone_enc, phone_hash, phone_appid, phone_openid, created_at, updated_at", "ttbbttii"),
    "identities": ("id, account_id, appid, openid, created_at, updated_at", "itttii"),
    "audit_log": ("at, event, account_id, other_account, appid, subject, reason", "ittttbt"),
    "sessions": ("token_hash, identity_id, created_at, expires_at, refresh_hash, ends_at", "biiibi"),
}


def _parse(line: str, kinds: str) -> tuple:
    out = []
    for value, kind in zip(line.rstrip("\n").split("\t"), kinds):
        if value == "\\N":
            out.append(None)
        elif kind == "i":
            out.append(int(value))
        elif kind == "b":
            out.append(bytes.fromhex(value[3:]))  # \\x…
        else:
            out.append(value)
    return tuple(out)


def _sqlite_template(cfg) -> dict:
    if "sqlite" in _templates:
        return _templates["sqlite"]
    files = _seed_files(cfg)
    data = Path(tempfile.mkdtemp(prefix="g-sqlite-", dir=cfg.workdir))
    # The admin commands open an existing database only: the service itself makes it, on its first start.
    sim = Sim(data)
    try:
        start_wxlogin(sim, data, data_dir=data).stop()
    finally:
        sim.stop()
    for log in data.glob("*.log"):
        log.unlink()
    db = data / "wxlogin.db"
    empty = _sqlite_size(db)
    t0 = time.monotonic()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    for table, (cols, kinds) in COLUMNS.items():
        marks = ", ".join("?" * len(kinds))
        conn.execute("BEGIN")
        with open(files["dir"] / f"{table}.tsv") as f:
            conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", (_parse(line, kinds) for line in f))
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    t = {"data_dir": data, "empty_bytes": empty, "seeded_bytes": _sqlite_size(db), "load_s": time.monotonic() - t0}
    _templates["sqlite"] = t
    return t


def _sqlite_size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def _pg_template(cfg) -> dict:
    if "postgres" in _templates:
        return _templates["postgres"]
    files = _seed_files(cfg)
    name = f"wxlogin_bench_g_{uuid.uuid4().hex[:10]}"
    _psql(f"CREATE DATABASE {name}")
    atexit.register(lambda: _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    _migrate(["--database-url", f"{PG}/{name}"])
    empty = int(_psql(f"SELECT pg_database_size('{name}')"))
    t0 = time.monotonic()
    for table, (cols, _) in COLUMNS.items():
        _psql(f"\\copy {table} ({cols}) FROM '{files['dir'] / f'{table}.tsv'}'", name)
    _psql("SELECT setval(pg_get_serial_sequence('identities', 'id'), (SELECT max(id) FROM identities))", name)
    # What autovacuum does soon after a bulk load in production: visibility map and planner statistics.
    _psql("VACUUM ANALYZE", name)
    _psql("CHECKPOINT")
    t = {"database": name, "empty_bytes": empty, "seeded_bytes": int(_psql(f"SELECT pg_database_size('{name}')")),
         "load_s": time.monotonic() - t0}
    _templates["postgres"] = t
    return t


def _database(cfg, backend: str, db: str, work: Path) -> tuple[dict, callable]:
    """start_wxlogin's arguments for a fresh copy of the database, and how to drop it."""
    if backend == "sqlite":
        if db == "empty":
            return {}, lambda: None
        data = work / "data"
        shutil.copytree(_sqlite_template(cfg)["data_dir"], data)
        return {"data_dir": data}, lambda: None
    name = f"wxlogin_bench_g_{uuid.uuid4().hex[:10]}"
    if db == "empty":
        _psql(f"CREATE DATABASE {name}")
    else:
        _psql(f"CREATE DATABASE {name} TEMPLATE {_pg_template(cfg)['database']} STRATEGY FILE_COPY")
    return {"database_url": f"{PG}/{name}"}, lambda: _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def g_step(cfg, label: str, rnd: int) -> dict:
    backend, db, flow = ROWS[label]
    if flow == "purge":
        return _purge_step(cfg, label, rnd)
    work = Path(tempfile.mkdtemp(prefix="g-", dir=cfg.workdir))
    kwargs, drop = _database(cfg, backend, db, work)
    services = {"postgres"} if backend == "postgres" else set()
    try:
        rec = scenarios.load_step(cfg, "g", flow, 0, cfg.conns_a, rnd,
                                  start=lambda sim, step_work: start_wxlogin(sim, step_work, **kwargs),
                                  services=services)
    finally:
        drop()
        shutil.rmtree(work, ignore_errors=True)
    rec.update({"label": label, "backend": backend, "database": db, "flow": flow, **_sizes(backend, db)})
    return rec


def _sizes(backend: str, db: str) -> dict:
    t = _templates.get(backend) if db != "empty" else None
    if not t:
        return {}
    counts = _templates["files"]["counts"]
    return {"seeded": counts, "db_empty_bytes": t["empty_bytes"], "db_seeded_bytes": t["seeded_bytes"],
            "db_bytes_per_account": (t["seeded_bytes"] - t["empty_bytes"]) / counts["accounts"],
            "load_s": t["load_s"], "generate_s": _templates["files"]["generate_s"]}


PURGE_LINE = re.compile(r"^(\S+)\s+INFO .*purged expired.*rows=(\d+).*elapsed_ms=(\d+)")


def _purge_step(cfg, label: str, rnd: int) -> dict:
    """The seeded database; the server's first purge due `delay` seconds after its start, inside a measurement of
    new-user logins long enough to hold the whole purge."""
    backend, db, _ = ROWS[label]
    measure_s = max(cfg.measure_s, 8 if cfg.quick else 30)
    # The purge is due about a second into the measurement (the server starts, then the warm-up runs).
    delay = cfg.warmup_s + 2
    work = Path(tempfile.mkdtemp(prefix="g-purge-", dir=cfg.workdir))
    kwargs, drop = _database(cfg, backend, db, work)
    sim = server = None
    try:
        sim = Sim(work)
        rate = cfg.rate_guess["wxlogin"] * 1.5
        write_bodies(work / "warm.jsonl", scenarios._getphone_bodies(sim, int(rate * cfg.warmup_s) + 256))
        write_bodies(work / "main.jsonl", scenarios._getphone_bodies(sim, int(rate * measure_s) + 256))
        started = time.time()
        server = start_wxlogin(sim, work, extra_args=("--purge-interval", f"{delay}s"),
                               rust_log="warn,wxlogin::app=info", **kwargs)
        wrk(server.targets, "/api/getPhone", work / "warm.jsonl", cfg.conns_a, cfg.warmup_s)
        # After the warm-up: the server's PostgreSQL connections (backend processes) exist by then.
        services = pids_named({"postgres"}) if backend == "postgres" else []
        cpu0, svc0, cores0, sim0 = server.cpu(), cpu_seconds(services), core_times(), sim.cpu()
        t0 = time.time()
        result = wrk(server.targets, "/api/getPhone", work / "main.jsonl", cfg.conns_a, measure_s)
        t1 = time.time()
        cpu1, svc1, cores1, sim1 = server.cpu(), cpu_seconds(services), core_times(), sim.cpu()
        rss = server.rss()
        # A purge of a million rows under load can outlast the measurement: its line is written when it ends.
        log = _await_purge(server.procs[0].log, PURGE_WAIT_S)
    finally:
        if server:
            server.stop()
        if sim:
            sim.stop()
        drop()
        shutil.rmtree(work, ignore_errors=True)
    m = next(filter(None, map(PURGE_LINE.match, log.splitlines())), None)
    if m is None:
        raise RuntimeError(f"no purge logged within {PURGE_WAIT_S} s after the measurement (the server started "
                           f"{t0 - started:.1f} s before it)")
    end, took = _rfc3339(m.group(1)), int(m.group(3)) / 1000
    purge = {"rows": int(m.group(2)), "seconds": took, "started_s": end - took - t0, "ended_s": end - t0,
             "measured_s": t1 - t0}
    # The measurement counts as "during the purge" if the purge ran through most of it.
    overlap = min(t1, end) - max(t0, end - took)
    purge["overlap_s"] = max(0.0, overlap)
    purge["inside"] = purge["overlap_s"] >= 0.8 * (t1 - t0) or (purge["started_s"] >= 0 and end <= t1)
    cores = core_busy(cores0, cores1)
    return {
        "scenario": "g", "round": rnd, "label": label, "impl": "wxlogin", "route": "/api/getPhone",
        "backend": backend, "database": db, "flow": "purge", "latency_ms": 0, "connections": cfg.conns_a,
        "seconds": measure_s, "settings": server.settings, "wrk": result, "purge": purge,
        "cpu_s": cpu1 - cpu0, "cpu_us_per_req": (cpu1 - cpu0) / max(1, result["requests"]) * 1e6,
        "services_cpu_us_per_req": (svc1 - svc0) / max(1, result["requests"]) * 1e6,
        "rss_kib": sum(rss.values()), "rss_processes": len(rss), "cores": cores, "sim_cpu_s": sim1 - sim0,
        "other_cpu_s": scenarios._other(cores, cpu1 - cpu0 + svc1 - svc0, sim1 - sim0, result),
        **_sizes(backend, db),
    }


PURGE_WAIT_S = 600


def _await_purge(log: Path, timeout: float) -> str:
    """The server's log once it holds the purge's line (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text()
        if any(PURGE_LINE.match(line) for line in text.splitlines()) or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def _rfc3339(stamp: str) -> float:
    """A tracing timestamp (`2026-11-29T01:02:03.456789Z`) as Unix seconds."""
    base, _, frac = stamp.rstrip("Z").partition(".")
    t = dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp()
    return t + float(f"0.{frac or 0}")


# ---- the report -----------------------------------------------------------------------------------------------------

def summarize(records: list[dict], med, noise, noise_limit: float) -> dict:
    """Per row: medians over rounds (max latency: the worst round; errors: the sum), noisy rounds left out."""
    out = {}
    by_label: dict[str, list[dict]] = {}
    for r in records:
        if r["scenario"] == "g":
            by_label.setdefault(r["label"], []).append(r)
    for label, every in by_label.items():
        rs = [r for r in every if noise(r) <= noise_limit] or every
        lat = lambda k: med(rs, lambda r: r["wrk"]["latency_us"][k])  # noqa: E731
        row = {
            "rounds": len(rs), "backend": rs[0]["backend"], "database": rs[0]["database"], "flow": rs[0]["flow"],
            "rps": med(rs, lambda r: r["wrk"]["rps"]), "p50_us": lat("p50"), "p99_us": lat("p99"),
            "max_us": max(r["wrk"]["latency_us"]["max"] for r in rs), "errors": sum(r["wrk"]["errors"] for r in rs),
            "codes_ran_out": sum(1 for r in rs if r["wrk"]["exhausted"]),
            "cpu_us_per_req": med(rs, lambda r: r["cpu_us_per_req"]),
            "services_cpu_us_per_req": med(rs, lambda r: r.get("services_cpu_us_per_req", 0)),
            "rss_mib": max(r["rss_kib"] for r in rs) / 1024, "connections": rs[0]["connections"],
            "seconds": rs[0]["seconds"], "other_core_share": max(noise(r) for r in rs),
            "noisy_rounds_dropped": [r["round"] + 1 for r in every if r not in rs],
        }
        for key in ("seeded", "db_empty_bytes", "db_seeded_bytes", "db_bytes_per_account", "load_s", "generate_s"):
            if key in rs[0]:
                row[key] = rs[0][key]
        if row["flow"] == "purge":
            row["purges"] = [r["purge"] for r in rs]
            row["purge_s"] = med(rs, lambda r: r["purge"]["seconds"])
        out[f"g:{label}"] = row
    return out


def _pairs(summary: dict) -> list[tuple[str, str, dict, dict]]:
    """(backend, flow name, empty row, 1M row) for every flow measured on both."""
    out = []
    for backend in ("sqlite", "postgres"):
        for flow in ("new user (getPhone)", "known user (v1/login)"):
            empty = summary.get(f"g:{backend}, empty: {flow}")
            big = summary.get(f"g:{backend}, 1M accounts: {flow}")
            if empty and big:
                out.append((backend, flow, empty, big))
    return out


def targets(summary: dict) -> list[dict]:
    checks = []
    for backend, flow, empty, big in _pairs(summary):
        x = big["rps"] / empty["rps"]
        checks.append({"check": f"(g) {backend}, {flow}: throughput at 1M accounts ≥ 0.8× the empty database's",
                       "value": f"{x:.2f}× ({big['rps']:,.0f} / {empty['rps']:,.0f} req/s)", "pass": x >= 0.8})
    return checks


def markdown(summary: dict, table, ms) -> str:
    g = [(k[2:], v) for k, v in summary.items() if k.startswith("g:")]
    if not g:
        return ""
    seeded = next((v["seeded"] for _, v in g if "seeded" in v), None)
    size = (f"{seeded['accounts']:,} accounts, {seeded['sessions']:,} sessions ({seeded['expired_sessions']:,} "
            "expired)" if seeded else "the seeded accounts")
    out = [f"\n**(g) A million accounts** — wxlogin alone, {g[0][1]['connections']} connections, upstream latency 0; "
           f"an empty database beside one holding {size}, each step on a fresh copy. PostgreSQL is the machine's "
           "service (not pinned); its CPU is counted beside the server's\n"]
    out.append(table(
        ["row", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "server CPU µs/req", "PostgreSQL CPU µs/req",
         "peak RSS MiB"],
        [[k, f"{v['rps']:,.0f}", ms(v["p50_us"]), ms(v["p99_us"]), ms(v["max_us"]), f"{v['errors']}",
          f"{v['cpu_us_per_req']:.0f}", f"{v['services_cpu_us_per_req']:.0f}" if v["backend"] == "postgres" else "—",
          f"{v['rss_mib']:.1f}"] for k, v in g]))
    pairs = _pairs(summary)
    if pairs:
        out.append("\n| at 1M accounts / empty | req/s | p99 |\n|---|---:|---:|")
        out += [f"| {b}, {f} | {big['rps'] / e['rps']:.2f}× | {ms(big['p99_us'])} / {ms(e['p99_us'])} ms |"
                for b, f, e, big in pairs]
    sizes = [(v["backend"], v) for k, v in g if "db_bytes_per_account" in v and v["flow"] != "purge"]
    seen = set()
    rows = []
    for backend, v in sizes:
        if backend in seen:
            continue
        seen.add(backend)
        rows.append([backend, f"{v['db_empty_bytes'] / 2**20:.1f}", f"{v['db_seeded_bytes'] / 2**20:,.0f}",
                     f"{v['db_bytes_per_account']:,.0f}", f"{v['load_s']:.0f}"])
    if rows:
        out.append("\nDatabase size (an account: its row, its identity, its audit row and "
                   f"{SESSIONS_PER_ACCOUNT} sessions; SQLite: the file after a checkpoint; PostgreSQL: "
                   "`pg_database_size` after `VACUUM ANALYZE`)\n")
        out.append(table(["backend", "empty MiB", "seeded MiB", "bytes per account", "load s"], rows))
    purges = [(k, v) for k, v in g if v["flow"] == "purge"]
    if purges:
        out.append("\nThe purge at that size: the server's first purge (`--purge-interval`) starts about a second into "
                   "a measurement of new-user logins and runs through it (it may end after it: its duration is its "
                   "own, under that load); in brackets, the same database's row without a purge\n")
        prow = []
        for k, v in purges:
            base = summary.get(f"g:{v['backend']}, 1M accounts: new user (getPhone)")
            p = v["purges"]
            prow.append([v["backend"], ", ".join(f"{x['rows']:,}" for x in p),
                         ", ".join(f"{x['seconds']:.1f}" for x in p),
                         ", ".join(f"{x['started_s']:.1f} to {x['ended_s']:.1f} of {x.get('measured_s', 0):.0f}"
                                   + ("" if x["inside"] else " (!)") for x in p),
                         f"{v['rps']:,.0f}" + (f" ({v['rps'] / base['rps']:.2f}×)" if base else ""),
                         ms(v["p99_us"]) + (f" ({ms(base['p99_us'])})" if base else ""),
                         ms(v["max_us"]) + (f" ({ms(base['max_us'])})" if base else ""), f"{v['errors']}"])
        out.append(table(["backend", "rows purged", "purge s", "purge ran from/to s of the measurement",
                          "logins req/s (× without)", "p99 ms (without)", "max ms (without)", "errors"], prow))
        if any(not x["inside"] for _, v in purges for x in v["purges"]):
            out.append("\n((!): the purge ran through less than 80% of the measurement: that row is not all "
                       "\"during the purge\".)")
    return "\n".join(out) + "\n"
