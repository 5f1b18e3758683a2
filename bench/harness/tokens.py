"""Scenarios (e) and (f), the token side, wxlogin beside node-oidc-provider:

- (e) the refresh grant: what a client pays to refresh a token (`/oauth2/token`, grant_type=refresh_token, with
  rotation), wxlogin on SQLite beside node-oidc-provider on a persistent store (our Redis adapter, its own
  redis-server per step) and on its in-memory adapter;
- (f) verification: what a backend pays to check a token (`/auth/verify`, `/oauth2/introspect`), beside
  node-oidc-provider's introspection (both adapters) and nginx's `return 200;` (the floor of one HTTP exchange on
  the same core).

Every step starts a fresh server (and, for wxlogin, a fresh simulator; for the peer on Redis, a fresh
redis-server), makes the tokens it will send, warms up at the same load, then measures with wrk (`tokens.lua`).
Pools of access tokens are sent round and round; refresh tokens (and the cold row's access tokens) each once, with
more minted and the step measured again if they run out.
"""

from __future__ import annotations

import base64
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

from . import client
from .load import wrk_tokens
from .procs import (NGINX, Server, Sim, core_busy, core_times, oidc_mint, start_nginx, start_oidc, start_wxlogin)

POOL = 1000
# The resource server allowed to introspect: a [[clients]] entry of wxlogin, a confidential client of the peer.
CLIENT_ID, CLIENT_SECRET = "bench", "0123456789abcdef0123"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
# The peer's public client (token_endpoint_auth_method none) that holds the users' tokens.
OIDC_APP = "app"

REFRESH_BODY = "grant_type=refresh_token&refresh_token={token}"
VERIFY = dict(method="GET", urlpath="/auth/verify", auth="Bearer {token}")
WX_INTROSPECT = dict(method="POST", urlpath="/oauth2/introspect", auth=BASIC, body="token={token}",
                     expect='"active":true')
OIDC_INTROSPECT = dict(method="POST", urlpath="/token/introspection", auth=BASIC, body="token={token}",
                       expect='"active":true')
WX_REFRESH = dict(method="POST", urlpath="/oauth2/token", body=REFRESH_BODY, expect='"access_token"')
OIDC_REFRESH = dict(method="POST", urlpath="/token", body=REFRESH_BODY + f"&client_id={OIDC_APP}",
                    expect='"access_token"')


class Row(NamedTuple):
    scenario: str  # "e" or "f"
    impl: str  # wxlogin, oidc-provider, nginx
    what: str  # floor, verify, introspect, refresh
    tokens: int | str  # POOL / 1 (sent round and round) or "once" (each sent once)
    request: dict  # wrk_tokens' request template
    adapter: str | None = None  # the peer's store: "redis" or "memory"


# label -> row, in the order a round runs them (interleaved: wxlogin, the peer on Redis, the peer in memory).
ROWS: dict[str, Row] = {
    "wxlogin refresh grant": Row("e", "wxlogin", "refresh", "once", WX_REFRESH),
    "oidc-provider refresh grant (Redis adapter)": Row("e", "oidc-provider", "refresh", "once", OIDC_REFRESH,
                                                        "redis"),
    "oidc-provider refresh grant (in-memory adapter)": Row("e", "oidc-provider", "refresh", "once", OIDC_REFRESH,
                                                            "memory"),
    "nginx `return 200;` (floor)": Row("f", "nginx", "floor", 1, dict(method="GET", urlpath="/")),
    "wxlogin /auth/verify, 1 token": Row("f", "wxlogin", "verify", 1, VERIFY),
    "wxlogin /auth/verify, 1,000 tokens": Row("f", "wxlogin", "verify", POOL, VERIFY),
    "wxlogin /auth/verify, each token once": Row("f", "wxlogin", "verify", "once", VERIFY),
    "wxlogin /oauth2/introspect, 1,000 tokens": Row("f", "wxlogin", "introspect", POOL, WX_INTROSPECT),
    "oidc-provider introspection, 1,000 tokens (Redis adapter)": Row("f", "oidc-provider", "introspect", POOL,
                                                                      OIDC_INTROSPECT, "redis"),
    "oidc-provider introspection, 1,000 tokens (in-memory adapter)": Row("f", "oidc-provider", "introspect", POOL,
                                                                          OIDC_INTROSPECT, "memory"),
}
SCENARIOS = ("e", "f")
# Smoke runs (--quick): every row that stays fast (not the cold row: it mints a login per request; not the 1-token
# row: wrk's limit, not the server's).
QUICK_ROWS = ["wxlogin refresh grant", "oidc-provider refresh grant (Redis adapter)",
              "oidc-provider refresh grant (in-memory adapter)",
              "nginx `return 200;` (floor)", "wxlogin /auth/verify, 1,000 tokens",
              "wxlogin /oauth2/introspect, 1,000 tokens", "oidc-provider introspection, 1,000 tokens (Redis adapter)",
              "oidc-provider introspection, 1,000 tokens (in-memory adapter)"]

# Requests/s guesses for rows whose tokens are each sent once, refined by every measurement: how many to mint.
RATE_GUESS = {"wxlogin /auth/verify, each token once": 6000.0, "wxlogin refresh grant": 6000.0,
              "oidc-provider refresh grant (Redis adapter)": 1500.0,
              "oidc-provider refresh grant (in-memory adapter)": 2000.0}

# What each implementation keeps its tokens in (the report's "store" column).
STORES = {"wxlogin": "SQLite, in-process", "nginx": "—"}


def rows(scenario: str, quick: bool) -> list[str]:
    """The rows of scenario "e" or "f" in a round's order (the floor row only where nginx is installed)."""
    labels = QUICK_ROWS if quick else list(ROWS)
    return [label for label in labels
            if ROWS[label].scenario == scenario and (ROWS[label].impl != "nginx" or NGINX.exists())]


def _wxlogin_config(work: Path) -> Path:
    path = work / "wxlogin.toml"
    path.write_text(f'[[clients]]\nid = "{CLIENT_ID}"\nsecret = "{CLIENT_SECRET}"\n')
    return path


def _wxlogin_logins(sim: Sim, server: Server, n: int) -> list[dict]:
    """n new users logged in through /api/getPhone: each answer's data (token, refreshToken: one session each)."""
    users = sim.new_users(n)
    bodies = [{"loginCode": u["loginCode"], "phoneCode": u["phoneCode"]} for u in users]
    if n < 5000:
        answers = client.post_many(server.targets[0], "/api/getPhone", bodies)
    else:  # one client process is the limit (~2,500 logins/s): two, each with half the bodies
        half = (n + 1) // 2
        with ProcessPoolExecutor(2) as pool:
            parts = pool.map(client.post_many, [server.targets[0]] * 2, ["/api/getPhone"] * 2,
                             [bodies[:half], bodies[half:]])
            answers = [a for part in parts for a in part]
    bad = [a for a in answers if a[0] != 200 or a[1].get("code") != 0]
    if bad:
        raise RuntimeError(f"logging users in: {len(bad)} of {len(answers)} failed, e.g. {bad[0]}")
    return [a[1]["data"] for a in answers]


def _mint(impl: str, what: str, sim: Sim | None, server: Server, n: int) -> list[str]:
    if impl == "nginx":
        return ["-"] * n
    if impl == "oidc-provider":
        return oidc_mint(server, "refresh" if what == "refresh" else "access", n)
    field = "refreshToken" if what == "refresh" else "token"
    return [d[field] for d in _wxlogin_logins(sim, server, n)]


def _write(path: Path, tokens: list[str]) -> Path:
    path.write_text("\n".join(tokens) + "\n")
    return path


def _rss_now_kib(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def token_step(cfg, label: str, rnd: int) -> dict:
    from .scenarios import _other, _teardown  # noqa: PLC0415 (scenarios imports this module)

    row = ROWS[label]
    impl, what, tokens, request = row.impl, row.what, row.tokens, row.request
    conns = cfg.conns_a
    once = tokens == "once"
    boost = 1.0
    for attempt in range(4):
        work = Path(tempfile.mkdtemp(prefix="step-", dir=cfg.workdir))
        sim = server = None
        try:
            if impl == "wxlogin":
                sim = Sim(work)
                server = start_wxlogin(sim, work, config=_wxlogin_config(work))
            elif impl == "oidc-provider":
                server = start_oidc(work, adapter=row.adapter)
            else:
                server = start_nginx(work)
            if once:
                rate = RATE_GUESS[label] * 1.5 * boost
                warm = _mint(impl, what, sim, server, int(rate * cfg.warmup_s) + 4 * conns)
                main = _mint(impl, what, sim, server, int(rate * cfg.measure_s) + 4 * conns)
                files = _write(work / "warm.txt", warm), _write(work / "main.txt", main)
                minted = len(warm) + len(main)
            else:
                pool = _write(work / "pool.txt", _mint(impl, what, sim, server, tokens))
                files = pool, pool  # the warm-up sends the same pool: every token seen once before the measurement
                minted = tokens
            mode = "once" if once else "cycle"
            wrk_tokens(server.targets[0], files[0], conns, cfg.warmup_s, mode=mode, **request)
            by0, cpu0, cores0 = server.cpu_by_proc(), server.cpu(), core_times()
            sim0 = sim.cpu() if sim else 0.0
            result = wrk_tokens(server.targets[0], files[1], conns, cfg.measure_s, mode=mode, **request)
            cores1, cpu1, by1 = core_times(), server.cpu(), server.cpu_by_proc()
            sim1 = sim.cpu() if sim else 0.0
            pids = server.pids()
            rss, rss_now, rss_by = server.rss(), _rss_now_kib(pids), server.rss_by_proc()
        finally:
            _teardown(server, sim, work)
        if result["exhausted"] == 0:
            break
        boost *= 2  # ran out of tokens: mint more and measure again
    if once:
        # Slow to come down: a round slowed by other work should not make the next, quieter one run out.
        RATE_GUESS[label] = max(RATE_GUESS[label] * 0.8, result["rps"])
    cores = core_busy(cores0, cores1)
    settings = dict(server.settings)
    if impl == "wxlogin":
        settings.update({"config": f"[[clients]] id = {CLIENT_ID!r}", "access_token": "JWT (ES256), 15 min",
                         "refresh": "rotating, single use (reuse ends the session)"})
    return {
        "scenario": row.scenario, "round": rnd, "label": label, "impl": impl, "what": what,
        "route": request["urlpath"], "adapter": row.adapter, "store": settings.get("store", STORES.get(impl, "?")),
        "tokens": tokens, "tokens_minted": minted, "connections": conns, "seconds": cfg.measure_s,
        "settings": settings, "wrk": result, "attempts": attempt + 1,
        "cpu_s": cpu1 - cpu0, "cpu_us_per_req": (cpu1 - cpu0) / max(1, result["requests"]) * 1e6,
        "rss_kib": sum(rss.values()), "rss_after_kib": rss_now, "rss_processes": len(rss),
        # Per process of the server (the peer on Redis: node and its redis-server), what cpu_s and rss_kib sum.
        "cpu_s_by_process": {k: by1[k] - by0[k] for k in by1}, "rss_kib_by_process": rss_by,
        "cores": cores, "sim_cpu_s": sim1 - sim0, "other_cpu_s": _other(cores, cpu1 - cpu0, sim1 - sim0, result),
    }
