"""Running wrk (pinned to the load core) over a file of pre-built bodies, and reading its result line."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

from .procs import BENCH, LOAD_CORE

WRK_THREADS = 2
SCRIPT = BENCH / "login.lua"
TOKENS_SCRIPT = BENCH / "tokens.lua"


def write_bodies(path: Path, bodies: list[dict]) -> None:
    with open(path, "w") as f:
        for b in bodies:
            f.write(json.dumps(b, separators=(",", ":")) + "\n")


def wrk(targets: list[str], urlpath: str, bodies: Path, connections: int, seconds: float,
        threads: int = WRK_THREADS) -> dict:
    """One wrk run; each thread sends its share of the bodies once. With several targets, thread k talks to target
    k mod n (so use as many threads as targets)."""
    env = {**os.environ, "BODIES": str(bodies), "URLPATH": urlpath, "THREADS": str(threads),
           "TARGETS": ",".join(targets) if len(targets) > 1 else ""}
    return _run(SCRIPT, targets[0], env, connections, seconds, threads)


def wrk_tokens(target: str, tokens: Path, connections: int, seconds: float, *, mode: str, method: str,
               urlpath: str, auth: str = "", body: str = "", expect: str = "", threads: int = WRK_THREADS) -> dict:
    """One wrk run with `tokens.lua` (scenarios e and f): one token per line of `tokens` put into the request template
    (`auth`: the Authorization header, `body`: a form body, "{token}" replaced), each line sent once
    (mode "once") or round and round ("cycle")."""
    env = {**os.environ, "TOKENS": str(tokens), "MODE": mode, "METHOD": method, "URLPATH": urlpath,
           "AUTH": auth, "BODY": body, "EXPECT": expect, "THREADS": str(threads)}
    return _run(TOKENS_SCRIPT, target, env, connections, seconds, threads)


def _run(script: Path, target: str, env: dict, connections: int, seconds: float, threads: int) -> dict:
    argv = ["taskset", "-c", LOAD_CORE, "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
            "--timeout", "10s", "-s", str(script), f"http://{target}/"]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            result = json.loads(line[len("WRKJSON "):])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            result["wrk_cpu_s"] = wrk_cpu
            result["ok_rps"] = result["ok"] / (result["duration_us"] / 1e6)
            # socket_errors.status (non-2xx answers) are already among "bad".
            sock = result["socket_errors"]
            result["errors"] = result["bad"] + sock["connect"] + sock["read"] + sock["write"] + sock["timeout"]
            return result
    raise RuntimeError(f"wrk gave no result (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
