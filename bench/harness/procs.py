"""The processes of one benchmark step: the simulator, the servers under test, and what they cost (CPU, peak RSS)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
# Where `cargo build --release` puts it: CARGO_TARGET_DIR when set (relative to the workspace), else target/.
WXLOGIN = (ROOT / os.environ.get("CARGO_TARGET_DIR", "target")) / "release" / "wxlogin"
VENV = BENCH / ".venv"

# Fixed test credentials in WeChat's shapes (wx + 16 hex, 32 hex); the simulator knows only this app.
APPID = "wx0000000000be0c41"
SECRET = "0000000000000000000000000000be0c"

SERVER_CORE = "0"
LOAD_CORE = "1"  # the simulator and the load generator

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method: str, url: str, body: object | None = None, timeout: float = 60) -> object:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as res:
        raw = res.read()
    return json.loads(raw) if raw else None


def wait_http(url: str, what: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            return http_json("GET", url, timeout=2)
        except (OSError, urllib.error.URLError, ValueError):
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer {url} within {timeout}s:\n{log.read_text()[-2000:]}")


class Proc:
    """A child process pinned with taskset, its log in the step's work dir, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: list[str], core: str, workdir: Path, env: dict | None = None, cwd=None):
        self.name = name
        self.log = workdir / f"{name}.log"
        full_env = {**os.environ, **(env or {})}
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(
                ["taskset", "-c", core, *argv], stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                start_new_session=True,
            )
        self.pid = self.popen.pid  # taskset execs the command: this is the server's own pid

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


# ---- process-tree accounting -------------------------------------------------------------------------------------

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(pid: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (all their threads), plus that of children they already reaped."""
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the comm: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / CLK_TCK


def pids_named(names: set[str]) -> list[int]:
    """Processes whose command name is one of `names` (read only: to charge PostgreSQL and Redis their CPU)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() in names:
                    out.append(int(entry))
            except OSError:
                continue
    return out


def peak_rss_kib(pids: list[int]) -> dict[int, int]:
    """VmHWM (peak resident set) of each process, in KiB."""
    out = {}
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[p] = int(line.split()[1])
        except OSError:
            continue
    return out


# ---- the simulator -------------------------------------------------------------------------------------------------

class Sim:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = Proc("sim", [str(WXLOGIN), "sim", "--listen", f"127.0.0.1:{self.port}", "--app",
                                 f"{APPID}:{SECRET}"], LOAD_CORE, workdir, env={"RUST_LOG": "warn"})
        try:
            wait_http(self.base + "/sandbox/v1/stats", "wxlogin sim", self.proc.popen, self.proc.log)
        except Exception:
            self.proc.stop()
            raise

    def cpu(self) -> float:
        return cpu_seconds([self.proc.pid])

    def stats(self) -> dict:
        return http_json("GET", self.base + "/sandbox/v1/stats")

    def latency(self, ms: int) -> None:
        if ms:
            http_json("PUT", self.base + "/sandbox/v1/faults", {"latencyMs": ms})
        else:
            http_json("DELETE", self.base + "/sandbox/v1/faults")

    def new_users(self, n: int) -> list[dict]:
        """n new users, each with one login code and one phone code."""
        items: list[dict] = []
        while len(items) < n:
            chunk = min(100_000, n - len(items))
            items += http_json("POST", self.base + "/sandbox/v1/batch", {"count": chunk})["items"]
        return items

    def codes_for(self, openids: list[str], kind: str) -> list[dict]:
        items: list[dict] = []
        for i in range(0, len(openids), 100_000):
            items += http_json("POST", self.base + "/sandbox/v1/batch",
                               {"openids": openids[i:i + 100_000], "kind": kind})["items"]
        return items

    def stop(self) -> None:
        self.proc.stop()


def stats_delta(before: dict, after: dict) -> dict:
    """What happened upstream between two /stats reads: tokens minted and calls/errors per route."""
    routes = {}
    for path, now in after["routes"].items():
        was = before["routes"].get(path, {"calls": 0, "errors": 0})
        calls, errors = now["calls"] - was["calls"], now["errors"] - was["errors"]
        if calls or errors:
            routes[path] = {"calls": calls, "errors": errors}
    return {"tokensIssued": after["tokensIssued"] - before["tokensIssued"], "routes": routes}


# ---- the servers under test ----------------------------------------------------------------------------------------

@dataclass
class Server:
    """One implementation under test: one or more instances (each a process tree) behind `targets`."""

    impl: str
    procs: list[Proc]
    targets: list[str]  # host:port of each instance
    settings: dict = field(default_factory=dict)
    cleanup: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.targets[0]}"

    def pids(self) -> list[int]:
        return [p for proc in self.procs for p in process_tree(proc.pid)]

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def rss(self) -> dict[int, int]:
        return peak_rss_kib(self.pids())

    def stop(self) -> None:
        for p in self.procs:
            p.stop()
        for fn in self.cleanup:
            fn()


DATA_KEY = base64.b64encode(os.urandom(32)).decode()


def start_wxlogin(sim: Sim, workdir: Path, binding: str = "verify", instances: int = 1,
                  database_url: str | None = None, redis_url: str | None = None,
                  binary: Path | None = None, config: Path | None = None,
                  extra: list[str] | None = None) -> Server:
    env = {"WX_APPID": APPID, "WX_SECRET": SECRET, "WXLOGIN_DATA_KEY": DATA_KEY, "RUST_LOG": "warn"}
    procs, targets = [], []
    for n in range(instances):
        port = free_port()
        data_dir = Path(tempfile.mkdtemp(prefix=f"wxlogin-{n}-", dir=workdir))
        argv = [str(binary or WXLOGIN), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
                "--wechat-base-url", sim.base, "--phone-binding", binding,
                # wrk sends every login from one address: the per-IP limit would refuse nearly all of it.
                "--rate-limits", "off"]
        if database_url:
            argv += ["--database-url", database_url]
        if redis_url:
            argv += ["--redis-url", redis_url]
        if config:
            argv += ["--config", str(config)]
        argv += extra or []
        proc = Proc(f"wxlogin-{n}", argv, SERVER_CORE, workdir, env=env)
        procs.append(proc)
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", "wxlogin serve", proc.popen, proc.log)
        except Exception:
            for p in procs:
                p.stop()
            raise
        targets.append(f"127.0.0.1:{port}")
    settings = {"phone_binding": binding, "instances": instances, "RUST_LOG": "warn", "rate_limits": "off",
                "storage": "postgres+redis" if database_url else "sqlite (WAL, synchronous=NORMAL)"}
    return Server("wxlogin", procs, targets, settings)


PY_WORKERS = os.cpu_count() or 2


def start_python(sim: Sim, workdir: Path) -> Server:
    port = free_port()
    env = {"WX_APPID": APPID, "WX_SECRET": SECRET, "WECHAT_BASE_URL": sim.base + "/", "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [str(VENV / "bin" / "uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(PY_WORKERS), "--no-access-log", "--log-level", "warning"]
    proc = Proc("python", argv, SERVER_CORE, workdir, env=env, cwd=BENCH / "peers" / "python")
    _wait_workers(f"http://127.0.0.1:{port}/healthz", PY_WORKERS, proc)
    settings = {"server": f"uvicorn --workers {PY_WORKERS} (uvloop, httptools)", "framework": "FastAPI, sync def "
                "endpoint in its thread pool (anyio default 40 threads per worker)", "client": "wechatpy 1.8.18 "
                "(requests.Session, urllib3 default pool of 10 per host)", "access_token": "wechatpy MemoryStorage, "
                "per worker process, /cgi-bin/token, no lock", "logging": "--no-access-log --log-level warning"}
    return Server("python", [proc], [f"127.0.0.1:{port}"], settings)


def start_node(sim: Sim, workdir: Path) -> Server:
    port = free_port()
    env = {"WX_APPID": APPID, "WX_SECRET": SECRET, "WECHAT_BASE_URL": sim.base, "PORT": str(port),
           "NODE_ENV": "production"}
    proc = Proc("node", [shutil.which("node") or "node", "server.js"], SERVER_CORE, workdir, env=env,
                cwd=BENCH / "peers" / "node")
    _wait_workers(f"http://127.0.0.1:{port}/healthz", 1, proc)
    settings = {"server": "Fastify 5, one process, logger off", "client": "global fetch (undici, keep-alive)",
                "access_token": "module variable until expires_in - 300 s, /cgi-bin/token, no single-flight"}
    return Server("node", [proc], [f"127.0.0.1:{port}"], settings)


def _wait_workers(url: str, workers: int, proc: Proc, timeout: float = 60) -> None:
    """Until `workers` distinct pids have answered /healthz (each request on a new connection); a server that
    does not come up is stopped."""
    try:
        _await_pids(url, workers, proc, timeout)
    except Exception:
        proc.stop()
        raise


def _await_pids(url: str, workers: int, proc: Proc, timeout: float) -> None:
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name}: only {len(seen)} of {workers} workers answered:\n"
                               f"{proc.log.read_text()[-2000:]}")
        seen.add(wait_http(url, proc.name, proc.popen, proc.log)["pid"])
        if len(seen) < workers:
            time.sleep(0.02)


STARTERS = {"python": start_python, "node": start_node}


# ---- scenario (e): the token side's peer and the floor ---------------------------------------------------------------

OIDC_DIR = BENCH / "peers" / "oidc-provider"
NGINX = Path("/usr/sbin/nginx")


def start_oidc(workdir: Path) -> Server:
    """node-oidc-provider (peers/oidc-provider/server.js): one Node process, its in-memory adapter."""
    port = free_port()
    proc = Proc("oidc-provider", [shutil.which("node") or "node", "server.js"], SERVER_CORE, workdir,
                env={"PORT": str(port), "NODE_ENV": "production"}, cwd=OIDC_DIR)
    _wait_workers(f"http://127.0.0.1:{port}/healthz", 1, proc)
    version = json.loads((OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").read_text())["version"]
    settings = {"server": f"oidc-provider {version} (Koa), one Node process, NODE_ENV=production",
                "adapter": "its in-memory adapter (development-only in its docs), LRU bound raised to 10M entries",
                "access_token": "opaque", "rotateRefreshToken": True,
                "refresh_answer": "opaque access token, rotated refresh token, id_token (ES256)"}
    return Server("oidc-provider", [proc], [f"127.0.0.1:{port}"], settings)


def oidc_mint(server: Server, kind: str, n: int) -> list[str]:
    """n tokens ("access" or "refresh") minted through the provider's models, each of a grant of its own."""
    out: list[str] = []
    while len(out) < n:
        chunk = min(50_000, n - len(out))
        req = urllib.request.Request(f"{server.url}/bench/mint?kind={kind}&n={chunk}", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=300) as res:
            out += res.read().decode().split()
    return out


def start_nginx(workdir: Path) -> Server:
    """nginx with one worker answering `return 200;` to everything: the floor of one HTTP exchange."""
    port = free_port()
    prefix = workdir / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    temps = "".join(f"    {k}_temp_path {prefix / k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(
        "daemon off;\nworker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n    access_log off;\n    keepalive_requests 1000000;\n" + temps +
        f"    server {{\n        listen 127.0.0.1:{port};\n        location / {{ return 200; }}\n    }}\n}}\n")
    proc = Proc("nginx", [str(NGINX), "-p", str(prefix), "-c", str(conf)], SERVER_CORE, workdir)
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as res:
                if res.status == 200:
                    break
        except (OSError, urllib.error.URLError):
            pass
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"nginx did not come up:\n{proc.log.read_text()[-2000:]}")
        time.sleep(0.05)
    version = subprocess.run([str(NGINX), "-v"], capture_output=True, text=True).stderr.strip()
    settings = {"server": f"{version}, 1 worker, `return 200;`, access_log off"}
    return Server("nginx", [proc], [f"127.0.0.1:{port}"], settings)


def core_times() -> dict[str, tuple[int, int]]:
    """Per core: (busy, total) jiffies from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            vals = [int(v) for v in vals[:8]]
            idle = vals[3] + vals[4]  # idle + iowait
            out[name[3:]] = (sum(vals) - idle, sum(vals))
    return out


def core_busy(before: dict, after: dict) -> dict[str, float]:
    """Share of time each core was busy between two core_times() reads, as 'server' and 'load' (0..1), and the
    busy CPU-seconds of all cores together ('busy_s')."""
    def share(core: str) -> float:
        busy = after[core][0] - before[core][0]
        total = after[core][1] - before[core][1]
        return busy / total if total else 0.0
    busy_s = sum(after[c][0] - before[c][0] for c in after) / CLK_TCK
    return {"server": share(SERVER_CORE), "load": share(LOAD_CORE), "busy_s": busy_s}
