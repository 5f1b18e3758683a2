"""The scenarios: each step starts a fresh simulator and a fresh server, pre-mints every code it will send, warms
up, then measures. Steps of a round are interleaved across implementations (wxlogin, python, node, wxlogin, …)."""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import bigdb, client, scan, tokens
from .load import WRK_THREADS, wrk, write_bodies
from .procs import (APPID, STARTERS, Server, Sim, core_busy, core_times, cpu_seconds, pids_named, start_wxlogin,
                    stats_delta)

UPSTREAM_MS = 30
BURST = 1000


@dataclass
class Config:
    quick: bool
    rounds: int
    measure_s: float
    warmup_s: float
    conns_a: int = 64
    conns_b: int = 32
    workdir: Path = Path(tempfile.gettempdir())
    # Requests/s guesses for latency-0 runs, refined by every measurement: how many codes to pre-mint.
    rate_guess: dict = field(default_factory=lambda: {"wxlogin": 15000.0, "python": 1500.0, "node": 6000.0})


# label -> (implementation, route, flow, phone binding, upstream round trips on the critical path)
FLOWS = {
    "wxlogin getPhone verify": ("wxlogin", "/api/getPhone", "getphone", "verify", 2),
    "wxlogin getPhone concurrent": ("wxlogin", "/api/getPhone", "getphone", "concurrent", 1),
    "wxlogin v1/login known user": ("wxlogin", "/api/v1/login", "login_known", "verify", 1),
    "wxlogin v1/phone ticket": ("wxlogin", "/api/v1/phone", "phone_ticket", "verify", 1),
    "python getPhone (wechatpy)": ("python", "/api/getPhone", "getphone", None, 2),
    "node getPhone (fetch)": ("node", "/api/getPhone", "getphone", None, 2),
}
PEERS = ["python getPhone (wechatpy)", "node getPhone (fetch)"]

# `bench/run --baseline BIN`: another wxlogin binary (e.g. the previous release) measured beside this one, in the
# same rounds, so a change is compared side by side rather than against numbers from another day.
BASELINE_FLOWS = {
    "baseline getPhone verify": ("wxlogin", "/api/getPhone", "getphone", "verify", 2),
    "baseline v1/login known user": ("wxlogin", "/api/v1/login", "login_known", "verify", 1),
}


def add_baseline(binary: Path) -> None:
    global BASELINE_BIN
    BASELINE_BIN = binary
    FLOWS.update(BASELINE_FLOWS)


BASELINE_BIN: Path | None = None


def _start(label: str, sim: Sim, work: Path) -> Server:
    impl, _, _, binding, _ = FLOWS[label]
    if impl == "wxlogin":
        binary = BASELINE_BIN if label in BASELINE_FLOWS else None
        return start_wxlogin(sim, work, binding=binding, binary=binary)
    return STARTERS[impl](sim, work)


def _getphone_bodies(sim: Sim, n: int) -> list[dict]:
    return [{"loginCode": u["loginCode"], "phoneCode": u["phoneCode"]} for u in sim.new_users(n)]


def _check(answers: list, what: str) -> None:
    bad = [a for a in answers if a[0] != 200 or a[1].get("code") != 0]
    if bad:
        raise RuntimeError(f"{what}: {len(bad)} of {len(answers)} failed, e.g. {bad[0]}")


def make_bodies(flow: str, sim: Sim, server: Server, n: int) -> list[dict]:
    """n request bodies for `flow`, every code fresh. Pre-steps run now (the simulator at latency 0)."""
    if flow == "getphone":
        return _getphone_bodies(sim, n)
    if flow == "login_known":
        # Known users: a quarter as many users as logins, each logged in once through /api/getPhone beforehand,
        # then each returns up to 4 times (login codes interleaved, far under the 100/min per-user limit).
        users = sim.new_users(max(1, math.ceil(n / 4)))
        answers = client.post_many(server.targets[0], "/api/getPhone",
                                   [{"loginCode": u["loginCode"], "phoneCode": u["phoneCode"]} for u in users])
        _check(answers, "registering known users")
        openids = [users[i % len(users)]["openid"] for i in range(n)]
        return [{"loginCode": c["loginCode"]} for c in sim.codes_for(openids, "login")]
    if flow == "phone_ticket":
        # Tickets: /api/v1/login of users the service does not know yet (tickets live 5 minutes).
        users = sim.new_users(n)
        answers = client.post_many(server.targets[0], "/api/v1/login", [{"loginCode": u["loginCode"]} for u in users])
        _check(answers, "collecting tickets")
        return [{"phoneCode": u["phoneCode"], "ticket": a[1]["data"]["ticket"]} for u, a in zip(users, answers)]
    raise ValueError(flow)


def _teardown(server: Server | None, sim: Sim | None, work: Path) -> None:
    """Stop what a step started and drop its files (codes, databases; logs are quoted in any error raised)."""
    if server:
        server.stop()
    if sim:
        sim.stop()
    shutil.rmtree(work, ignore_errors=True)


def _budget(cfg: Config, impl: str, latency_ms: int, conns: int, seconds: float, boost: float) -> int:
    """How many bodies a run of `seconds` can use: with upstream latency every request takes at least one round
    trip, so conns/latency bounds the rate; at latency 0, the implementation's best rate seen so far."""
    rate = conns / (latency_ms / 1000) if latency_ms else cfg.rate_guess[impl] * 1.5
    return int(rate * seconds * boost) + 4 * conns


def load_step(cfg: Config, scenario: str, label: str, latency_ms: int, conns: int, rnd: int,
              start=None, services: set[str] = frozenset()) -> dict:
    """`start(sim, work)`: how to start the server (default: by the label); `services`: processes (PostgreSQL)
    whose CPU during the measurement is the server's too."""
    impl, route, flow, _, rtts = FLOWS[label]
    boost = 1.0
    for attempt in range(4):
        work = Path(tempfile.mkdtemp(prefix="step-", dir=cfg.workdir))
        sim = None
        server = None
        try:
            sim = Sim(work)
            server = (start or (lambda sim, work: _start(label, sim, work)))(sim, work)
            warm = make_bodies(flow, sim, server, _budget(cfg, impl, latency_ms, conns, cfg.warmup_s, boost))
            main = make_bodies(flow, sim, server, _budget(cfg, impl, latency_ms, conns, cfg.measure_s, boost))
            write_bodies(work / "warm.jsonl", warm)
            write_bodies(work / "main.jsonl", main)
            del warm, main
            sim.latency(latency_ms)
            # Warm-up at the same load: fetches the access token(s), fills connection pools, JITs.
            wrk(server.targets, route, work / "warm.jsonl", conns, cfg.warmup_s)
            pids = pids_named(set(services)) if services else []
            before, cpu0, cores0, sim0, svc0 = sim.stats(), server.cpu(), core_times(), sim.cpu(), cpu_seconds(pids)
            result = wrk(server.targets, route, work / "main.jsonl", conns, cfg.measure_s)
            cores1, cpu1, after, sim1, svc1 = core_times(), server.cpu(), sim.stats(), sim.cpu(), cpu_seconds(pids)
            rss = server.rss()
        finally:
            _teardown(server, sim, work)
        if result["exhausted"] == 0:
            break
        boost *= 3  # ran out of codes: mint more and measure again
    if not latency_ms:
        cfg.rate_guess[impl] = max(cfg.rate_guess[impl] * 0.5, result["rps"])
    return {
        "scenario": scenario, "round": rnd, "label": label, "impl": impl, "route": route,
        "latency_ms": latency_ms, "round_trips": rtts, "floor_ms": rtts * latency_ms, "connections": conns,
        "seconds": cfg.measure_s, "settings": server.settings, "wrk": result, "attempts": attempt + 1,
        "cpu_s": cpu1 - cpu0, "cpu_us_per_req": (cpu1 - cpu0) / max(1, result["requests"]) * 1e6,
        "rss_kib": sum(rss.values()), "rss_processes": len(rss), "upstream": stats_delta(before, after),
        "cores": core_busy(cores0, cores1), "sim_cpu_s": sim1 - sim0,
        "services_cpu_us_per_req": (svc1 - svc0) / max(1, result["requests"]) * 1e6,
        "other_cpu_s": _other(core_busy(cores0, cores1), cpu1 - cpu0 + svc1 - svc0, sim1 - sim0, result),
    }


def _other(cores: dict, server_s: float, sim_s: float, result: dict) -> float:
    """CPU-seconds the machine spent on anything but the server, the simulator and wrk during a measurement: other
    processes (a compiler next door) and kernel work not charged to a process. High values flag a noisy run."""
    return max(0.0, cores["busy_s"] - server_s - sim_s - result["wrk_cpu_s"])


def burst_step(cfg: Config, label: str, rnd: int) -> dict:
    """Scenario (c): a fresh server (cold token cache) and 1,000 getPhone requests at once, upstream at 30 ms."""
    impl, route, _, _, _ = FLOWS[label]
    work = Path(tempfile.mkdtemp(prefix="step-", dir=cfg.workdir))
    sim = None
    server = None
    try:
        sim = Sim(work)
        sim.latency(UPSTREAM_MS)
        server = _start(label, sim, work)
        bodies = _getphone_bodies(sim, BURST)
        before, cpu0 = sim.stats(), server.cpu()
        result = client.burst(server.targets, route, bodies)
        cpu1, after = server.cpu(), sim.stats()
        rss = server.rss()
    finally:
        _teardown(server, sim, work)
    return {"scenario": "c", "round": rnd, "label": label, "impl": impl, "route": route,
            "latency_ms": UPSTREAM_MS, "settings": server.settings, "burst": result, "cpu_s": cpu1 - cpu0,
            "rss_kib": sum(rss.values()), "rss_processes": len(rss), "upstream": stats_delta(before, after),
            "tokens_before": before["tokensIssued"]}


# ---- scenario (d): storage and instances (wxlogin only) -------------------------------------------------------------

D_CONFIGS = [("sqlite x1", 1, False), ("postgres+redis x1", 1, True), ("postgres+redis x3", 3, True)]


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                   check=True, capture_output=True, text=True)


def _forget_redis_token() -> None:
    """Drop any cached token of the bench app (a new simulator would refuse it: the cache must start cold)."""
    keys = subprocess.run(["redis-cli", "-h", "127.0.0.1", "--scan", "--pattern", f"*{APPID}*"],
                          capture_output=True, text=True, check=True).stdout.split()
    if keys:
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "del", *keys], capture_output=True, check=True)


def scale_step(cfg: Config, name: str, instances: int, shared: bool, rnd: int) -> dict:
    """One storage/instance configuration: first a cold burst spread over the instances (token fetches), then
    throughput at latency 0 with wrk's threads spread round-robin over the instances."""
    work = Path(tempfile.mkdtemp(prefix="step-", dir=cfg.workdir))
    db = None
    sim = None
    server = None
    threads = max(WRK_THREADS, instances)
    try:
        sim = Sim(work)
        kwargs = {}
        if shared:
            db = f"wxlogin_bench_{uuid.uuid4().hex[:12]}"
            _psql(f"CREATE DATABASE {db}")
            _forget_redis_token()
            kwargs = {"database_url": f"postgres://postgres@127.0.0.1:5432/{db}",
                      "redis_url": "redis://127.0.0.1:6379/"}
        sim.latency(UPSTREAM_MS)
        server = start_wxlogin(sim, work, instances=instances, **kwargs)
        s0 = sim.stats()
        burst = client.burst(server.targets, "/api/getPhone", _getphone_bodies(sim, BURST))
        s1 = sim.stats()
        sim.latency(0)
        # Generous: this step does not retry when codes run out (the report flags it).
        for part, secs in (("warm", cfg.warmup_s), ("main", cfg.measure_s)):
            n = _budget(cfg, "wxlogin", 0, cfg.conns_a, secs, 2.0)
            write_bodies(work / f"{part}.jsonl", _getphone_bodies(sim, n))
        wrk(server.targets, "/api/getPhone", work / "warm.jsonl", cfg.conns_a, cfg.warmup_s, threads)
        services = pids_named({"postgres", "redis-server"}) if shared else []
        before, cpu0, cores0, sim0 = sim.stats(), server.cpu(), core_times(), sim.cpu()
        svc0 = cpu_seconds(services)
        result = wrk(server.targets, "/api/getPhone", work / "main.jsonl", cfg.conns_a, cfg.measure_s, threads)
        svc1 = cpu_seconds(services)
        cores1, cpu1, after, sim1 = core_times(), server.cpu(), sim.stats(), sim.cpu()
        rss = server.rss()
    finally:
        _teardown(server, sim, work)
        if db:
            _forget_redis_token()
            time.sleep(0.2)
            _psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return {"scenario": "d", "round": rnd, "label": f"wxlogin {name}", "impl": "wxlogin", "route": "/api/getPhone",
            "latency_ms": 0, "connections": cfg.conns_a, "seconds": cfg.measure_s, "settings": server.settings,
            "wrk": result, "cpu_s": cpu1 - cpu0, "cpu_us_per_req": (cpu1 - cpu0) / max(1, result["requests"]) * 1e6,
            "rss_kib": sum(rss.values()), "rss_max_instance_kib": max(rss.values()), "rss_processes": len(rss),
            "upstream": stats_delta(before, after), "burst": burst, "burst_upstream": stats_delta(s0, s1),
            "cores": core_busy(cores0, cores1), "sim_cpu_s": sim1 - sim0, "services_cpu_s": svc1 - svc0,
            "services_cpu_us_per_req": (svc1 - svc0) / max(1, result["requests"]) * 1e6,
            "other_cpu_s": _other(core_busy(cores0, cores1), cpu1 - cpu0 + svc1 - svc0, sim1 - sim0, result)}


def plan(scenarios: list[str], quick: bool = False) -> list[tuple]:
    """One round's steps in order, interleaved across implementations."""
    steps: list[tuple] = []
    if "a" in scenarios:
        steps += [("a", label) for label in ["wxlogin getPhone verify", *PEERS]]
        if BASELINE_BIN is not None:
            # Interleaved with this build's own rows: the same flows, alternating binaries.
            steps += [("a", "baseline getPhone verify"), ("a", "wxlogin v1/login known user"),
                      ("a", "baseline v1/login known user")]
    if "b" in scenarios:
        steps += [("b", label) for label in ["wxlogin getPhone verify", *PEERS, "wxlogin getPhone concurrent",
                                              "wxlogin v1/login known user", "wxlogin v1/phone ticket"]]
    if "c" in scenarios:
        steps += [("c", label) for label in ["wxlogin getPhone verify", *PEERS]]
    if "d" in scenarios:
        steps += [("d", cfg) for cfg in D_CONFIGS]
    for scenario in tokens.SCENARIOS:  # e: the refresh grant; f: verification
        if scenario in scenarios:
            steps += [(scenario, label) for label in tokens.rows(scenario, quick)]
    if "g" in scenarios:
        steps += [("g", label) for label in bigdb.rows(quick)]
    if "h" in scenarios:
        steps += [("h", label) for label in scan.rows(quick)]
    return steps


def run_step(cfg: Config, step: tuple, rnd: int) -> dict:
    scenario, what = step
    if scenario == "a":
        return load_step(cfg, "a", what, 0, cfg.conns_a, rnd)
    if scenario == "b":
        return load_step(cfg, "b", what, UPSTREAM_MS, cfg.conns_b, rnd)
    if scenario == "c":
        return burst_step(cfg, what, rnd)
    if scenario in tokens.SCENARIOS:
        return tokens.token_step(cfg, what, rnd)
    if scenario == "g":
        return bigdb.g_step(cfg, what, rnd)
    if scenario == "h":
        return scan.scan_step(cfg, what, rnd)
    name, instances, shared = what
    return scale_step(cfg, name, instances, shared, rnd)
