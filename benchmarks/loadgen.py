"""HTTP load for the decide benchmark: keep-alive HTTP/1.1 on raw asyncio streams, in a few processes.

Why not httpx: its per-request client work (~1 ms of CPU) saturated the client before a no-op BentoML
server, and its paced mode let one event loop fall behind schedule, so the no-op itself showed a p99 of
hundreds of milliseconds. Here a request is one pre-encoded ``bytes`` write and a response one header
read plus a sized body read, each client process runs its own event loop (uvloop when installed), and the
parent merges the processes' results.

Two modes:

* ``closed``: ``connections`` loops, each sending its next request as soon as the previous answer
  arrived, for ``seconds`` -> throughput (what the server can do when never idle);
* ``open``: requests leave on a fixed schedule (request ``i`` at ``start + i / rate``, spread over the
  processes) whatever the server does; latency counts from the scheduled time, so queueing in the server
  or in the client shows (no coordinated omission). A free keep-alive connection is used when there is
  one, else a new one is opened (its connect time counts too). ``lag`` is how late the client itself
  dispatched, to tell client from server delay.

Each process also reports the CPU it used, so a run can show the client was not the bottleneck.

    python benchmarks/loadgen.py closed|open --url URL --bodies FILE [--seconds 10] [--connections 16]
        [--rate 200] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["LoadResult", "run_load"]

START_DELAY_S = 1.0  # processes start together: time for every child to import and connect


@dataclass
class LoadResult:
    """Merged over the client processes; latencies and lags in seconds."""

    requests: int = 0
    failures: int = 0
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    @property
    def client_cpu_share(self) -> float:
        """CPU seconds of all client processes per second of run: 1.0 is one full core."""
        return self.client_cpu_s / self.wall_s if self.wall_s else 0.0


# -- one connection -------------------------------------------------------------------------------------
def encode_requests(url: str, path: str, bodies: list[bytes]) -> list[bytes]:
    parts = urlsplit(url)
    head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
    return [(head + f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]


class Connection:
    """One keep-alive HTTP/1.1 connection; ``exchange`` sends a request and reads its whole answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> int:
        """The response status; the connection is reopened next time when the server closed it."""
        if self.writer is None:
            await self.open()
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = 0, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    async def status(self, request: bytes) -> int:
        """:meth:`exchange`, with 0 for a failed exchange (the connection is closed and reopened next time)."""
        try:
            return await self.exchange(request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            return 0


# -- the two modes, in one process ----------------------------------------------------------------------
async def _closed(host: str, port: int, requests: list[bytes], start: float, seconds: float,
                  connections: int, out: dict) -> None:
    conns = [Connection(host, port) for _ in range(connections)]
    for c in conns:
        await c.open()
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    deadline = start + seconds
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    async def loop(k: int, conn: Connection) -> None:
        i = k
        while True:
            t = time.perf_counter()
            if t >= deadline:
                return
            status = await conn.status(requests[i % len(requests)])
            latencies.append(time.perf_counter() - t)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            i += connections

    cpu = os.times()
    await asyncio.gather(*(loop(k, c) for k, c in enumerate(conns)))
    used = os.times()
    out.update(wall_s=time.perf_counter() - start, latencies=latencies, statuses=statuses,
               cpu_s=(used.user - cpu.user) + (used.system - cpu.system))
    for c in conns:
        c.close()


async def _open(host: str, port: int, requests: list[bytes], start: float, seconds: float, rate: float,
                index: int, processes: int, warm: int, out: dict) -> None:
    idle: deque[Connection] = deque()
    for _ in range(warm):
        conn = Connection(host, port)
        await conn.open()
        idle.append(conn)
    latencies: list[float] = []
    lags: list[float] = []
    statuses: dict[str, int] = {}
    pending: set[asyncio.Task] = set()

    async def one(i: int, scheduled: float) -> None:
        conn = idle.popleft() if idle else Connection(host, port)
        status = await conn.status(requests[i % len(requests)])
        latencies.append(time.perf_counter() - scheduled)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        idle.append(conn)

    total = int(rate * seconds)
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    cpu = os.times()
    for i in range(index, total, processes):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(max(0.0, time.perf_counter() - scheduled))
        task = asyncio.ensure_future(one(i, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending)
    used = os.times()
    out.update(wall_s=time.perf_counter() - start, latencies=latencies, lags=lags, statuses=statuses,
               cpu_s=(used.user - cpu.user) + (used.system - cpu.system))
    for c in idle:
        c.close()


def _child(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    parts = urlsplit(args.url)
    bodies = [b.encode() for b in json.loads(Path(args.bodies).read_text())]
    requests = encode_requests(args.url, args.path, bodies)
    # the shared start is wall-clock time (the parent's); every duration below is perf_counter
    start = time.perf_counter() + (args.start_wall - time.time())
    out: dict = {}
    if args.mode == "closed":
        coro = _closed(parts.hostname, parts.port, requests, start, args.seconds, args.connections, out)
    else:
        coro = _open(parts.hostname, parts.port, requests, start, args.seconds, args.rate, args.index,
                     args.processes, args.connections, out)
    asyncio.run(coro)
    Path(args.out).write_text(json.dumps(out))


# -- the parent: spread over processes, merge ------------------------------------------------------------
def run_load(mode: str, url: str, bodies: list[str], *, seconds: float, connections: int = 16,
             rate: float = 200.0, processes: int = 2, path: str = "/decide") -> LoadResult:
    """Runs ``mode`` (``closed`` or ``open``) in ``processes`` client processes and merges their results.

    ``connections`` is the total number of closed-loop connections, or of connections opened ahead of an
    open-loop run (more open on demand).
    """
    if mode not in ("closed", "open"):
        raise ValueError(f"mode must be closed or open, got {mode!r}")
    with tempfile.TemporaryDirectory(prefix="loadgen-") as folder:
        body_file = Path(folder) / "bodies.json"
        body_file.write_text(json.dumps(bodies))
        start_wall = time.time() + START_DELAY_S
        children = []
        for k in range(processes):
            share = connections // processes + (k < connections % processes)
            command = [sys.executable, str(Path(__file__).resolve()), mode, "--url", url, "--bodies", str(body_file),
                       "--seconds", str(seconds), "--connections", str(max(1, share)), "--rate", str(rate),
                       "--processes", str(processes), "--index", str(k), "--start-wall", repr(start_wall),
                       "--path", path, "--out", str(Path(folder) / f"out-{k}.json")]
            children.append(subprocess.Popen(command))
        outputs = []
        for k, child in enumerate(children):
            if child.wait(timeout=seconds + 120) != 0:
                raise RuntimeError(f"load generator process exited with code {child.returncode}")
            outputs.append(json.loads((Path(folder) / f"out-{k}.json").read_text()))
    merged = LoadResult()
    for out in outputs:
        merged.latencies += out["latencies"]
        merged.lags += out.get("lags", [])
        merged.client_cpu_s += out["cpu_s"]
        merged.wall_s = max(merged.wall_s, out["wall_s"])
        for status, n in out["statuses"].items():
            merged.statuses[status] = merged.statuses.get(status, 0) + n
    merged.requests = sum(merged.statuses.values())
    merged.failures = merged.requests - merged.statuses.get("200", 0)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("closed", "open"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, help="JSON file: a list of request bodies (strings)")
    parser.add_argument("--path", default="/decide")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--index", type=int, default=None, help="(internal) this child's index")
    parser.add_argument("--start-wall", type=float, default=None, help="(internal) shared start time")
    parser.add_argument("--out", default=None, help="(internal) where this child writes its results")
    args = parser.parse_args()
    if args.index is not None:
        _child(args)
        return
    result = run_load(args.mode, args.url, json.loads(Path(args.bodies).read_text()), seconds=args.seconds,
                      connections=args.connections, rate=args.rate, processes=args.processes, path=args.path)
    print(json.dumps({"rps": round(result.rps, 1), "requests": result.requests, "failures": result.failures,
                      "client_cpu_share": round(result.client_cpu_share, 3)}))


if __name__ == "__main__":
    main()
