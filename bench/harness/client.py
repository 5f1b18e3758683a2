"""A small asyncio HTTP/1.1 client for what wrk cannot do: pre-steps that must read every answer in order (tickets),
and the cold-cache burst (N connections opened first, then N requests sent at once, each answer timed)."""

from __future__ import annotations

import asyncio
import json
import time


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, target: str) -> "Conn":
        host, port = target.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 20)
        return cls(reader, writer, target)

    def send(self, path: str, body: bytes) -> None:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)

    async def receive(self) -> tuple[int, bytes]:
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        body = b""
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return status, body
            body += chunk[:-2]

    async def call(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.send(path, body)
        await self.writer.drain()
        return await self.receive()

    def close(self) -> None:
        self.writer.close()


def _decode(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return {"raw": raw[:200].decode("utf-8", "replace")}


async def _many(target: str, path: str, bodies: list[bytes], concurrency: int) -> list[tuple[int, object]]:
    results: list[tuple[int, object]] = [(0, None)] * len(bodies)
    next_index = iter(range(len(bodies)))

    async def worker() -> None:
        conn = await Conn.open(target)
        try:
            for i in next_index:
                status, raw = await conn.call(path, bodies[i])
                results[i] = (status, _decode(raw))
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(bodies)))))
    return results


def post_many(target: str, path: str, bodies: list[dict], concurrency: int = 32) -> list[tuple[int, object]]:
    """POST every body once over `concurrency` keep-alive connections; answers in the order of the bodies."""
    encoded = [json.dumps(b, separators=(",", ":")).encode() for b in bodies]
    return asyncio.run(_many(target, path, encoded, concurrency))


async def _burst(targets: list[str], path: str, bodies: list[bytes]) -> dict:
    conns = await asyncio.gather(*(Conn.open(targets[i % len(targets)]) for i in range(len(bodies))))
    latencies: list[float] = []
    ok = bad = 0
    first_bad = ""

    async def one(conn: Conn, body: bytes) -> None:
        nonlocal ok, bad, first_bad
        try:
            status, raw = await conn.receive()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            status, raw = 0, str(e).encode()
        latencies.append(time.perf_counter() - start_all)
        if status == 200 and b'"code":0' in raw:
            ok += 1
        else:
            bad += 1
            first_bad = first_bad or f"{status} {raw[:200].decode('utf-8', 'replace')}"

    start_all = time.perf_counter()
    for conn, body in zip(conns, bodies):
        conn.send(path, body)
    await asyncio.gather(*(c.writer.drain() for c in conns))
    await asyncio.gather(*(one(c, b) for c, b in zip(conns, bodies)))
    wall = time.perf_counter() - start_all
    for c in conns:
        c.close()
    latencies.sort()

    def pct(p: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6)

    return {"requests": len(bodies), "ok": ok, "bad": bad, "first_bad": first_bad, "wall_s": wall,
            "latency_us": {"p50": pct(50), "p90": pct(90), "p99": pct(99), "max": int(latencies[-1] * 1e6)}}


def burst(targets: list[str], path: str, bodies: list[dict]) -> dict:
    """Open one connection per body (spread over `targets`), then send every request at once; time each answer
    from the moment the first request went out."""
    encoded = [json.dumps(b, separators=(",", ":")).encode() for b in bodies]
    return asyncio.run(_burst(targets, path, encoded))
