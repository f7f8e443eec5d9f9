#!/usr/bin/env python3
"""Hold many live SSE streams and idle WebSockets against a real toolgate, and report
the server's memory and the latency of ordinary calls made meanwhile.

Python 3.11 standard library only: HTTP/1.1, SSE and the WebSocket handshake are
written by hand over asyncio transports, so the client costs little per connection.

    python3 bench/streams/run.py                  # 10,000 SSE + 10,000 WebSocket
    python3 bench/streams/run.py --sse 500 --ws 500 --no-build

Steps: build the release binary (a no-op when it is fresh), raise the fd limit, start
`toolgate serve` on a free port of 127.0.0.1, measure echo latency on the idle server,
open the SSE streams (each a `sleep` that reports progress every 100 ms, and which
the client reads in full), then the idle WebSockets, measure RSS and echo latency
again, check a sample of the sockets with a call each, close everything and stop the
server. Every step has a time limit; the whole run stops by itself within --budget.
Traffic goes to 127.0.0.1 only (clients bind 127.0.0.2 and 127.0.0.3 as sources so
that 20,000 connections do not exhaust one address's ephemeral ports).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KEY = "bench-operator-key-0123456789abcdef"
HOST = "127.0.0.1"
SSE_SOURCE = "127.0.0.2"
WS_SOURCE = "127.0.0.3"


def args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sse", type=int, default=10_000, help="SSE streams to hold")
    p.add_argument("--ws", type=int, default=10_000, help="idle WebSockets to hold")
    p.add_argument("--echo-calls", type=int, default=2_000, help="echo calls per latency sample")
    p.add_argument("--echo-conns", type=int, default=4, help="keep-alive connections for echo calls")
    p.add_argument("--hold-s", type=float, default=10.0, help="seconds to hold everything open")
    p.add_argument("--open-concurrency", type=int, default=200, help="connections opened at once")
    p.add_argument("--budget-s", type=float, default=170.0, help="hard limit for the whole run")
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "toolgate")
    p.add_argument("--config", type=Path, default=HERE / "bench.toml")
    p.add_argument("--no-build", action="store_true", help="use the binary as it is")
    return p.parse_args()


# === process helpers ===


def raise_fd_limit(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(need, soft)
    try:  # root may raise the hard limit too
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, PermissionError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) in KiB, and the thread count."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            out[name] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


# === SSE ===


class SseStream(asyncio.Protocol):
    """One streamed `sleep` call. Reads everything the server sends and keeps only
    counts, as a client that renders progress would."""

    def __init__(self, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self.head: bytearray | None = bytearray()
        self.ready = loop.create_future()
        self.closed = False
        self.bytes = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.head is not None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.head[: self.head.find(b"\r\n")])
            data = bytes(self.head[end + 4 :])
            self.head = None
            if b" 200 " in status and not self.ready.done():
                self.ready.set_result(None)
            elif not self.ready.done():
                self.ready.set_exception(RuntimeError(status.decode(errors="replace")))
        self.bytes += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the stream started"))


def sse_request(port: int, ms: int) -> bytes:
    body = json.dumps({"ms": ms}).encode()
    return (
        f"POST /api/v1/tools/sleep/stream HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"X-Tool-API-Key: {KEY}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# === WebSocket ===


class WsConn(asyncio.Protocol):
    """A minimal RFC 6455 client: handshake, masked text frames out, pongs for pings."""

    def __init__(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET /api/v1/ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"X-Tool-API-Key: {KEY}\r\n\r\n"
        ).encode()
        self.ready = loop.create_future()
        self.buf = bytearray()
        self.upgraded = False
        self.closed = False
        self.messages: asyncio.Queue[dict] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[: self.buf.find(b"\r\n")])
            del self.buf[: end + 4]
            self.upgraded = b" 101 " in status
            if self.ready.done():  # the opener gave up waiting
                pass
            elif self.upgraded:
                self.ready.set_result(None)
            else:
                self.ready.set_exception(RuntimeError(status.decode(errors="replace")))
            if not self.upgraded:
                return
        self.frames()

    def frames(self) -> None:
        while len(self.buf) >= 2:
            opcode, n, at = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, at = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
            if len(self.buf) < at + n:
                return
            payload = bytes(self.buf[at : at + n])
            del self.buf[: at + n]
            if opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x1:
                self.messages.put_nowait(json.loads(payload))
            elif opcode == 0x8:
                self.closed = True

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if self.transport is not None:
            self.transport.write(head + mask + masked)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the upgrade"))


# === echo latency ===


async def echo_latencies(port: int, calls: int, conns: int) -> tuple[list[float], int]:
    """Latencies (s) of `calls` echo calls over `conns` keep-alive connections."""
    body = b'{"bench": true}'
    request = (
        f"POST /api/v1/tools/echo HTTP/1.1\r\nHost: {HOST}:{port}\r\nX-Tool-API-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors = 0

    async def worker(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for _ in range(n):
                start = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                errors += not head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    per = max(1, calls // conns)
    await asyncio.gather(*(worker(per) for _ in range(conns)))
    return latencies, errors


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def latency_row(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"p50 {percentile(ms, 0.5):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, max {max(ms, default=0):.2f} ms"


# === the run ===


async def open_many(count: int, make, port: int, source: str, concurrency: int, what: str) -> tuple[list, int, float]:
    """Open `count` connections `concurrency` at a time; returns the live ones."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    opened: list = []
    failures: dict[str, int] = {}
    start = time.monotonic()

    async def one() -> None:
        async with gate:
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(make, HOST, port, local_addr=(source, 0)), 20
                )
                await asyncio.wait_for(proto.ready, 20)
                opened.append(proto)
            except Exception as e:  # noqa: BLE001 - counted and reported
                failures[type(e).__name__ + ": " + str(e)[:60]] = failures.get(type(e).__name__ + ": " + str(e)[:60], 0) + 1

    await asyncio.gather(*(one() for _ in range(count)))
    took = time.monotonic() - start
    for why, n in failures.items():
        print(f"  {what}: {n} failed to open: {why}", file=sys.stderr)
    return opened, count - len(opened), took


async def ws_sample_calls(conns: list[WsConn], n: int) -> int:
    """Make one echo call on each of `n` sockets; count the correct answers."""
    sample = conns[:: max(1, len(conns) // n)][:n]
    for i, c in enumerate(sample):
        c.send(0x1, json.dumps({"type": "call", "id": f"w{i}", "tool": "echo", "arguments": {"i": i}}).encode())

    async def answer(i: int, c: WsConn) -> bool:
        while True:
            msg = await asyncio.wait_for(c.messages.get(), 10)
            if msg.get("type") == "result":
                return msg.get("id") == f"w{i}" and msg.get("output") == {"i": i}

    results = await asyncio.gather(*(answer(i, c) for i, c in enumerate(sample)), return_exceptions=True)
    return sum(r is True for r in results)


# fds the server and the client need besides the held connections.
FD_RESERVE = 100


def rss_row(pid: int, base: int) -> str:
    m = memory(pid)
    return f"{mib(m['VmRSS'])} (+{mib(m['VmRSS'] - base)} over idle)"


async def latency(a: argparse.Namespace, port: int, label: str, rows: list[tuple[str, str]]) -> None:
    """Echo latency measured by a separate process, so that this process's busy event
    loop (reading every stream) does not add its own delays to the figures."""
    probe = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--probe", str(port), str(a.echo_calls), str(a.echo_conns),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(probe.communicate(), 120)
    result = json.loads(out)
    lat, errs = result["latencies"], result["errors"]
    rows.append((f"echo latency, {label} ({len(lat)} calls, {errs} errors)", latency_row(lat)))


async def open_ws(a: argparse.Namespace, port: int, n: int, rows: list[tuple[str, str]]) -> list[WsConn]:
    ws, failed, took = await open_many(n, lambda: WsConn(port), port, WS_SOURCE, a.open_concurrency, "ws")
    rows.append(("WebSockets opened", f"{len(ws)} of {n} in {took:.1f} s ({failed} failed)"))
    await asyncio.sleep(2)
    return ws


async def check_ws(ws: list[WsConn], rows: list[tuple[str, str]]) -> None:
    n = min(100, len(ws))
    ok = await ws_sample_calls(ws, n)
    rows.append(("WebSocket sample calls answered", f"{ok} of {n}; {sum(not w.closed for w in ws)} of {len(ws)} open"))


def close_all(conns: list) -> None:
    for conn in conns:
        if conn.transport is not None:
            conn.transport.abort()


async def bench(a: argparse.Namespace, pid: int, port: int, limit: int, rows: list[tuple[str, str]]) -> None:
    base = memory(pid)["VmRSS"]
    rows.append(("server RSS, idle", mib(base)))
    await latency(a, port, "idle server", rows)

    # Phase 1: the SSE streams, each a sleep reporting progress every 100 ms.
    sse_req = sse_request(port, 600_000)
    sse, failed, took = await open_many(a.sse, lambda: SseStream(sse_req), port, SSE_SOURCE, a.open_concurrency, "sse")
    rows.append(("SSE streams opened", f"{len(sse)} of {a.sse} in {took:.1f} s ({failed} failed)"))
    await asyncio.sleep(2)
    rows.append((f"server RSS, {len(sse)} live SSE streams", rss_row(pid, base)))
    await latency(a, port, f"{len(sse)} SSE streams", rows)

    # Phase 2: idle WebSockets on top, as many as the server's fd limit leaves room for.
    room = max(0, min(a.ws, limit - len(sse) - FD_RESERVE))
    if room < a.ws:
        rows.append(("note", f"fd limit {limit}: {room} WebSockets fit beside the SSE streams"))
    ws = await open_ws(a, port, room, rows)
    rows.append((f"server RSS, {len(sse)} SSE + {len(ws)} WebSockets", rss_row(pid, base)))
    bytes_before, cpu_before, t0 = sum(s.bytes for s in sse), cpu_seconds(pid), time.monotonic()
    await latency(a, port, f"{len(sse)} SSE + {len(ws)} WS", rows)
    await asyncio.sleep(max(0.0, a.hold_s - (time.monotonic() - t0)))
    held = time.monotonic() - t0
    rate = (sum(s.bytes for s in sse) - bytes_before) / held
    cpu = (cpu_seconds(pid) - cpu_before) / held
    rows.append(("SSE bytes read while held", f"{rate / 1e6:.1f} MB/s over {held:.1f} s; server CPU {cpu * 100:.0f}%"))
    rows.append(("SSE streams still open", f"{sum(not s.closed for s in sse)} of {len(sse)}"))
    await check_ws(ws, rows)
    close_all(sse)

    # Phase 3: when the fd limit kept them apart, all the WebSockets without the streams.
    if len(ws) < a.ws:
        await asyncio.sleep(2)
        ws += await open_ws(a, port, a.ws - len(ws), rows)
        rows.append((f"server RSS, {len(ws)} idle WebSockets (SSE closed)", rss_row(pid, base)))
        await latency(a, port, f"{len(ws)} WebSockets", rows)
        await check_ws(ws, rows)
    m = memory(pid)
    rows.append(("server RSS peak (VmHWM)", f"{mib(m['VmHWM'])}, {m['Threads']} threads"))
    close_all(ws)
    await asyncio.sleep(2)
    rows.append(("server RSS after closing all", mib(memory(pid)["VmRSS"])))


def build(a: argparse.Namespace) -> None:
    if a.no_build:
        return
    print("building the release binary (a no-op when fresh)...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "toolgate"], cwd=ROOT, check=True)


async def wait_healthy(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            ok = (await reader.read(64)).startswith(b"HTTP/1.1 200")
            writer.close()
            if ok:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become healthy within 20 s")


def probe(port: int, calls: int, conns: int) -> int:
    """`--probe PORT CALLS CONNS`: measure echo latency, print it as JSON."""
    latencies, errors = asyncio.run(echo_latencies(port, calls, conns))
    print(json.dumps({"latencies": latencies, "errors": errors}))
    return 0


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--probe":
        return probe(*map(int, sys.argv[2:]))
    a = args()
    build(a)
    limit = raise_fd_limit(a.sse + a.ws + FD_RESERVE)
    if limit < max(a.sse, a.ws) + FD_RESERVE:
        print(f"fd limit {limit} is too low for {max(a.sse, a.ws)} connections", file=sys.stderr)
        return 2
    port = free_port()
    env = dict(os.environ, TOOLGATE_API_KEY=KEY)
    log_path = Path(tempfile.gettempdir()) / "toolgate-bench-streams.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    cmd = [str(a.binary), "--log-level", "warn", "serve", "--config", str(a.config), "--listen", f"{HOST}:{port}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    rows: list[tuple[str, str]] = [("connections", f"{a.sse} SSE + {a.ws} WebSocket, fd limit {limit}")]
    started = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(run(a, proc, port, limit, rows), a.budget_s))
    except TimeoutError:
        rows.append(("RESULT", f"stopped at the {a.budget_s:.0f} s budget"))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    rows.append(("total time", f"{time.monotonic() - started:.1f} s; server exit code {proc.returncode}"))
    rows.append(("server log", str(log_path)))
    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure'.ljust(width)} | value\n{'-' * width}-|-{'-' * 50}")
    for k, v in rows:
        print(f"{k.ljust(width)} | {v}")
    return 0


async def run(a: argparse.Namespace, proc: subprocess.Popen, port: int, limit: int, rows: list[tuple[str, str]]) -> None:
    await wait_healthy(port, proc)
    await bench(a, proc.pid, port, limit, rows)


if __name__ == "__main__":
    sys.exit(main())
