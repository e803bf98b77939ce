"""Slow clients against a running service: N connections trickle a request at one byte a second
(headers that never end, or a body that never ends) while signed requests from other clients are timed.

Used by bench/run.py for every candidate deployment; on its own:
    .venv/bin/python bench/slow_clients.py URL REQUESTS_FILE [--mode headers|body] [--connections 256]
REQUESTS_FILE holds raw signed requests as bench/run.py writes them (a length line, then the request).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

TRICKLE_SECONDS = 1.0
LEGIT_TIMEOUT_SECONDS = 10.0  # SmartThings gives up after 10 s


@dataclass
class SlowClientResult:
    mode: str
    connections: int
    legit_sent: int = 0
    legit_ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    reconnects: int = 0       # slow connections the server closed (the attacker simply opens another)
    held_at_end: int = 0      # slow connections still open when the run ended

    @property
    def failed(self) -> int:
        return self.legit_sent - self.legit_ok

    def percentile(self, fraction: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def summary(self) -> dict:
        return {"mode": self.mode, "connections": self.connections, "sent": self.legit_sent,
                "ok": self.legit_ok, "failed": self.failed, "p50": self.percentile(0.50),
                "p99": self.percentile(0.99), "max": max(self.latencies_ms, default=float("nan")),
                "reconnects": self.reconnects, "held": self.held_at_end}


def read_requests(path: Path, *, limit: int | None = None) -> list[bytes]:
    """Raw requests from bench/run.py's file format, with `Connection: close` so each is a new client."""
    raw, requests = path.read_bytes(), []
    offset = 0
    while offset < len(raw) and (limit is None or len(requests) < limit):
        newline = raw.index(b"\n", offset)
        length = int(raw[offset:newline])
        request = raw[newline + 1:newline + 1 + length]
        requests.append(request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
        offset = newline + 1 + length
    return requests


def _slow_start(host: str, mode: str, number: int) -> bytes:
    if mode == "headers":
        return f"POST / HTTP/1.1\r\nHost: {host}\r\nX-Slow-{number}: ".encode()
    return (f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 1000\r\n\r\n").encode()


async def _trickle(host: str, port: int, mode: str, number: int, stop: asyncio.Event,
                   result: SlowClientResult, open_now: list[int]) -> None:
    """One slow client: connect, send the start of a request, then one byte a second; reconnect if closed."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(TRICKLE_SECONDS)
            continue
        open_now[0] += 1
        try:
            writer.write(_slow_start(host, mode, number))
            await writer.drain()
            while not stop.is_set():
                try:
                    await asyncio.wait_for(reader.read(1), TRICKLE_SECONDS)
                    break  # an answer (an error page) or EOF: the server gave up on this connection
                except asyncio.TimeoutError:
                    pass
                writer.write(b"a" if mode == "headers" else b" ")
                await writer.drain()
        except OSError:
            pass
        finally:
            open_now[0] -= 1
            writer.close()
        if not stop.is_set():
            result.reconnects += 1


async def _legit(host: str, port: int, request: bytes, result: SlowClientResult) -> None:
    result.legit_sent += 1
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), LEGIT_TIMEOUT_SECONDS)
        try:
            writer.write(request)
            await writer.drain()
            remaining = LEGIT_TIMEOUT_SECONDS - (time.perf_counter() - started)
            answer = await asyncio.wait_for(reader.read(), max(0.01, remaining))  # Connection: close
        finally:
            writer.close()
    except (OSError, asyncio.TimeoutError):
        return
    if answer.startswith(b"HTTP/1.1 200"):
        result.legit_ok += 1
        result.latencies_ms.append((time.perf_counter() - started) * 1000)


async def measure(url: str, signed: list[bytes], *, mode: str, connections: int, duration: float,
                  rate: float) -> SlowClientResult:
    """Hold `connections` slow clients, then send `rate` signed requests a second for `duration` seconds."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = SlowClientResult(mode, connections)
    stop = asyncio.Event()
    open_now = [0]
    trickles = []
    for number in range(connections):
        trickles.append(asyncio.create_task(_trickle(host, port, mode, number, stop, result, open_now)))
        if number % 32 == 31:
            await asyncio.sleep(0.05)  # spread the connects a little
    await asyncio.sleep(2 * TRICKLE_SECONDS)  # every slow client is in place and trickling
    legit = []
    started = time.perf_counter()
    for index in range(int(duration * rate)):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        legit.append(asyncio.create_task(_legit(host, port, signed[index % len(signed)], result)))
    await asyncio.gather(*legit)
    result.held_at_end = open_now[0]
    stop.set()
    await asyncio.gather(*trickles, return_exceptions=True)
    return result


def run(url: str, signed: list[bytes], *, mode: str, connections: int = 256, duration: float = 20.0,
        rate: float = 20.0) -> SlowClientResult:
    return asyncio.run(measure(url, signed, mode=mode, connections=connections, duration=duration, rate=rate))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("requests_file", type=Path)
    parser.add_argument("--mode", choices=["headers", "body"], default="headers")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    result = run(args.url, read_requests(args.requests_file), mode=args.mode, connections=args.connections,
                 duration=args.duration, rate=args.rate)
    print(result.summary())
    if result.latencies_ms:
        print(f"median {statistics.median(result.latencies_ms):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
