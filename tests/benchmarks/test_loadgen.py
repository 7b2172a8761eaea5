"""The decide benchmark's load generator against a tiny keep-alive HTTP server: every answer is read
whole (sized and chunked bodies), statuses are counted, the open loop sends exactly its schedule."""

import asyncio
import threading

import pytest

from benchmarks.loadgen import run_load


@pytest.fixture(scope="module")
def server():
    seen = {"requests": 0, "connections": 0}
    ready = threading.Event()
    box = {}

    async def handle(reader, writer):
        seen["connections"] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                seen["requests"] += 1
                n = seen["requests"]
                status = b"503 Service Unavailable" if n % 10 == 0 else b"200 OK"
                if n % 2:
                    writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 7\r\n\r\n{\"a\":1}")
                else:
                    writer.write(b"HTTP/1.1 " + status + b"\r\ntransfer-encoding: chunked\r\n\r\n"
                                 b"3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def run():
        loop = asyncio.new_event_loop()
        srv = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        box["port"], box["loop"] = srv.sockets[0].getsockname()[1], loop
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    yield f"http://127.0.0.1:{box['port']}", seen
    box["loop"].call_soon_threadsafe(box["loop"].stop)


def test_closed_loop_reads_every_answer_on_kept_alive_connections(server):
    url, seen = server
    before = seen["connections"]
    result = run_load("closed", url, ['{"x": 1}', '{"x": 2}'], seconds=1.0, connections=4, processes=2)
    assert result.requests > 50 and result.requests == len(result.latencies)
    assert set(result.statuses) == {"200", "503"} and result.failures == result.statuses["503"]
    assert seen["connections"] - before == 4  # one connection per loop, kept alive throughout


def test_open_loop_sends_its_schedule(server):
    url, _ = server
    result = run_load("open", url, ['{"x": 1}'], seconds=1.0, rate=100, connections=2, processes=2)
    assert result.requests == 100 and len(result.latencies) == len(result.lags) == 100
    assert max(result.latencies) < 1.0
