"""An open-loop HTTP load generator (wrk2-style constant rate), asyncio over raw HTTP/1.1 keep-alive.

Request ``i`` is due at ``t0 + i / rate`` whether or not earlier ones have answered; its latency is
measured from when it was due, not from when it could be sent, so a stalled server shows up in the
figures instead of slowing the generator down (no coordinated omission). Connections are reused
while the server keeps them alive and opened as needed, up to ``max_connections``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    index: int
    due_wall: float  # time.time() when the request was due: comparable with Kafka record timestamps
    latency_s: float  # due -> response read
    status: int  # 0: no answer (connection error)
    error: str = ""


class _Pool:
    """Keep-alive connections; one idle for more than ``max_idle`` s is dropped (gunicorn closes them at 2 s)."""

    def __init__(self, host: str, port: int, limit: int, max_idle: float = 1.0) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(limit)
        self.max_idle = max_idle

    async def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        now = asyncio.get_running_loop().time()
        while self.idle:
            reader, writer, since = self.idle.pop()
            if now - since < self.max_idle:
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, False

    async def exchange(self, request: bytes) -> int:
        async with self.slots:
            while True:
                reader, writer, reused = await self._take()
                try:
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                except (ConnectionError, asyncio.IncompleteReadError):
                    writer.close()
                    if reused:
                        continue  # the server closed an idle keep-alive connection: the request never arrived
                    raise
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ", 2)[1])
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                await reader.readexactly(int(headers.get("content-length", "0")))
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                else:
                    self.idle.append((reader, writer, asyncio.get_running_loop().time()))
                return status

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


async def _run(host: str, port: int, path: str, rate: float, seconds: float, body: Callable[[int], bytes],
               max_connections: int) -> list[Sample]:
    pool = _Pool(host, port, max_connections)
    loop = asyncio.get_running_loop()
    samples: list[Sample] = []
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"

    async def one(i: int, due: float, due_wall: float) -> None:
        payload = body(i)
        request = f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload
        error = ""
        try:
            status = await asyncio.wait_for(pool.exchange(request), timeout=30)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}"
        samples.append(Sample(i, due_wall, loop.time() - due, status, error))

    t0, t0_wall = loop.time() + 0.05, time.time() + 0.05
    tasks = []
    for i in range(int(rate * seconds)):
        due = t0 + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due, t0_wall + i / rate)))
    await asyncio.gather(*tasks)
    pool.close()
    return sorted(samples, key=lambda s: s.index)


def open_loop(host: str, port: int, *, rate: float, seconds: float, body: Callable[[int], bytes],
              path: str = "/order", max_connections: int = 256) -> list[Sample]:
    """POST ``body(i)`` at a constant ``rate`` for ``seconds``; one sample per request."""
    return asyncio.run(_run(host, port, path, rate, seconds, body, max_connections))
